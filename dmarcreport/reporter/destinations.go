package reporter

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strings"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/verify/dmarc"
)

// ErrDestinationDNS wraps a temporary DNS failure while verifying an
// external destination: the report is tried again later (RFC 9990 §3 step
// 5 allows this).
var ErrDestinationDNS = errors.New("destination verification: DNS failure")

// mailtoAddress returns the address of a mailto: URI (RFC 6068), or an
// error for another scheme or a malformed address. An obsolete "!size"
// suffix (RFC 7489 §6.2) is ignored: RFC 9989 §4.8 keeps it only as
// obs-dmarc-uri, and RFC 9990 defines no size limit, so a report is sent
// whatever its size.
func mailtoAddress(uri string) (string, error) {
	uri = strings.TrimSpace(uri)
	if i := strings.LastIndexByte(uri, '!'); i > 0 {
		uri = uri[:i]
	}
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("rua %q: %w", uri, err)
	}
	if !strings.EqualFold(u.Scheme, "mailto") {
		return "", fmt.Errorf("rua %q: only mailto: is supported", uri)
	}
	to := u.Opaque
	if to == "" {
		to = u.Path
	}
	to, err = url.PathUnescape(to)
	if err != nil {
		return "", fmt.Errorf("rua %q: %w", uri, err)
	}
	if strings.Contains(to, ",") {
		return "", fmt.Errorf("rua %q: one address per URI", uri)
	}
	a, err := mail.ParseAddress(to)
	if err != nil || a.Name != "" {
		return "", fmt.Errorf("rua %q: not an address: %v", uri, err)
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at <= 0 || at == len(a.Address)-1 {
		return "", fmt.Errorf("rua %q: no domain", uri)
	}
	return a.Address, nil
}

func hostOf(addr string) string {
	return strings.ToLower(strings.TrimSuffix(addr[strings.LastIndexByte(addr, '@')+1:], "."))
}

// destinations returns the addresses a report for policyDomain goes to:
// the mailto: URIs of rua in order, malformed and other schemes skipped
// (RFC 9990 §2.5 "Report Delivery": they SHOULD be ignored), at most max
// of them, each outside the policy domain's Organizational Domain verified
// as RFC 9990 §3 "Verifying External Destinations" asks. skipped says why
// each URI was left out, for the log.
func destinations(ctx context.Context, r dnscache.Resolver, finder dmarc.OrgDomainFinder, policyDomain string, rua []string, max int) (to []string, skipped []string, err error) {
	policyOrg := ""
	sameOrg := func(host string) (bool, error) {
		// The policy domain itself and its subdomains share its
		// Organizational Domain: no lookup needed.
		if host == policyDomain || strings.HasSuffix(host, "."+policyDomain) {
			return true, nil
		}
		if policyOrg == "" {
			o, err := finder.OrgDomain(ctx, r, policyDomain)
			if err != nil {
				return false, fmt.Errorf("%w: organizational domain of %s: %w", ErrDestinationDNS, policyDomain, err)
			}
			policyOrg = o
		}
		destOrg, err := finder.OrgDomain(ctx, r, host)
		if err != nil {
			return false, fmt.Errorf("%w: organizational domain of %s: %w", ErrDestinationDNS, host, err)
		}
		return destOrg == policyOrg, nil
	}
	seen := map[string]bool{}
	for _, uri := range rua {
		if len(to) >= max {
			skipped = append(skipped, uri+": over reports.max_recipients")
			continue
		}
		addr, err := mailtoAddress(uri)
		if err != nil {
			skipped = append(skipped, err.Error())
			continue
		}
		host := hostOf(addr)
		same, err := sameOrg(host)
		if err != nil {
			return nil, nil, err
		}
		addrs := []string{addr}
		if !same {
			addrs, err = verifyExternal(ctx, r, policyDomain, host)
			if err != nil {
				if errors.Is(err, ErrDestinationDNS) {
					return nil, nil, err
				}
				skipped = append(skipped, uri+": "+err.Error())
				continue
			}
			if addrs == nil {
				addrs = []string{addr}
			}
		}
		for _, a := range addrs {
			if len(to) < max && !seen[strings.ToLower(a)] {
				seen[strings.ToLower(a)] = true
				to = append(to, a)
			}
		}
	}
	return to, skipped, nil
}

// verifyExternal performs RFC 9990 §3 for a destination host outside the
// policy domain's Organizational Domain. It returns nil, nil when the
// destination is authorized as it is, the overriding addresses when the
// authorizing record has a rua (step 9), or an error when it is not
// authorized. A temporary DNS failure is wrapped in ErrDestinationDNS.
func verifyExternal(ctx context.Context, r dnscache.Resolver, policyDomain, host string) ([]string, error) {
	// Steps 1–3: <policy domain>._report._dmarc.<destination host>.
	name := policyDomain + "._report._dmarc." + host
	// Step 4: a name over DNS limits cannot be verified.
	if len(name) > 253 {
		return nil, fmt.Errorf("%s is longer than DNS allows: not authorized", name)
	}
	txts, _, err := r.LookupTXT(ctx, name)
	if err != nil {
		if dnscache.IsNotFound(err) {
			return nil, fmt.Errorf("no TXT record at %s: not authorized", name)
		}
		return nil, fmt.Errorf("%w: TXT %s: %w", ErrDestinationDNS, name, err)
	}
	// Steps 6–8: at least one record starting with v=DMARC1.
	var rec *dmarc.Record
	for _, t := range txts {
		if p, err := dmarc.ParseRecord(t); err == nil {
			rec = p
			break
		}
	}
	if rec == nil {
		return nil, fmt.Errorf("no v=DMARC1 record at %s: not authorized", name)
	}
	if len(rec.RUA) == 0 {
		return nil, nil
	}
	// Step 9: the record's rua replaces the original, but must keep the
	// destination host; otherwise neither is used.
	var out []string
	for _, uri := range rec.RUA {
		addr, err := mailtoAddress(uri)
		if err != nil {
			continue
		}
		if hostOf(addr) != host {
			return nil, fmt.Errorf("the record at %s redirects to %s, another host: not authorized", name, hostOf(addr))
		}
		out = append(out, addr)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the record at %s has no usable mailto: rua: not authorized", name)
	}
	return out, nil
}
