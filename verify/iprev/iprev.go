// Package iprev implements the iprev authentication method of RFC 8601
// §3: the client address's reverse (PTR) names, each confirmed by a
// forward lookup that returns the address again ("forward-confirmed
// reverse DNS"). The result says the client's name is what its address
// owner publishes; it says nothing of the mail's author.
package iprev

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/verify"
)

// MaxNames bounds the PTR names confirmed, like RFC 7208 §5.5's limit of
// ten for the SPF ptr mechanism: an address may publish many, each costing
// a lookup.
const MaxNames = 10

// Errors carried in Result.Err; match them with errors.Is.
var (
	// ErrNoPTR: no PTR record for the address (permerror, RFC 8601 §3).
	ErrNoPTR = errors.New("iprev: no PTR record")
	// ErrMismatch: no PTR name's forward lookup gave the address back
	// (fail).
	ErrMismatch = errors.New("iprev: no PTR name resolves back to the address")
	// ErrDNS: a lookup failed temporarily (temperror).
	ErrDNS = errors.New("iprev: DNS lookup failed")
	// ErrNoAddress: the client address is unknown (a Unix-socket client).
	ErrNoAddress = errors.New("iprev: no client address")
)

// Result is the outcome of one iprev check.
type Result struct {
	// Status is pass, fail, temperror or permerror (RFC 8601 §3); none
	// when there was no address to check.
	Status verify.Status
	IP     netip.Addr
	// Name is the confirmed name on pass; otherwise the first PTR name,
	// if any.
	Name string
	// Names are the PTR names looked at (at most MaxNames).
	Names []string
	// Err says why for every result but pass.
	Err error
}

// Verify runs the iprev check of ip through r.
//
// RFC 8601 §3: pass when a PTR name's forward lookup returns ip; fail when
// the reverse and forward lookups all completed and none agreed (a forward
// lookup with no answer counts as disagreeing); temperror when a lookup
// failed for what is likely a transient reason and nothing passed;
// permerror when no PTR data is published for ip.
func Verify(ctx context.Context, r dnscache.Resolver, ip netip.Addr) Result {
	res := Result{IP: ip}
	if !ip.IsValid() {
		res.Status, res.Err = verify.StatusNone, ErrNoAddress
		return res
	}
	ip = ip.Unmap()
	res.IP = ip
	names, _, err := r.LookupPTR(ctx, ip)
	switch {
	case errors.Is(err, dnscache.ErrNXDomain), errors.Is(err, dnscache.ErrNoData):
		res.Status, res.Err = verify.StatusPermerror, fmt.Errorf("%w for %s: %w", ErrNoPTR, ip, err)
		return res
	case err != nil:
		res.Status, res.Err = verify.StatusTemperror, fmt.Errorf("%w: PTR of %s: %w", ErrDNS, ip, err)
		return res
	}
	for _, n := range names {
		n = strings.TrimSuffix(n, ".")
		if n != "" && len(res.Names) < MaxNames {
			res.Names = append(res.Names, n)
		}
	}
	if len(res.Names) == 0 {
		res.Status, res.Err = verify.StatusPermerror, fmt.Errorf("%w for %s", ErrNoPTR, ip)
		return res
	}
	res.Name = res.Names[0]
	var temp error
	for _, n := range res.Names {
		var addrs []netip.Addr
		if ip.Is4() {
			addrs, _, err = r.LookupA(ctx, n)
		} else {
			addrs, _, err = r.LookupAAAA(ctx, n)
		}
		if err != nil {
			if !errors.Is(err, dnscache.ErrNXDomain) && !errors.Is(err, dnscache.ErrNoData) && temp == nil {
				temp = fmt.Errorf("%w: forward lookup of %s: %w", ErrDNS, n, err)
			}
			continue
		}
		for _, a := range addrs {
			if a.Unmap() == ip {
				res.Status, res.Name, res.Err = verify.StatusPass, n, nil
				return res
			}
		}
	}
	if temp != nil {
		res.Status, res.Err = verify.StatusTemperror, temp
		return res
	}
	res.Status, res.Err = verify.StatusFail, fmt.Errorf("%w: %s (%s)", ErrMismatch, ip, strings.Join(res.Names, ", "))
	return res
}
