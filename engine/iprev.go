package engine

import (
	"context"
	"errors"
	"net/netip"
	"strings"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/authres"
	"github.com/authmilter/authmilter/verify/iprev"
)

// IPRevMode says what is done with the iprev check (RFC 8601 §3).
type IPRevMode string

// The iprev modes.
const (
	// IPRevOff: no check. The zero value means off too.
	IPRevOff IPRevMode = "off"
	// IPRevHeader: the check is reported in Authentication-Results, the
	// log line and metrics, and never acted on.
	IPRevHeader IPRevMode = "header"
)

// ClientCheck is the iprev check of one SMTP client: started at connect,
// shared by the messages of the connection.
type ClientCheck struct {
	ip     netip.Addr
	done   chan struct{}
	res    iprev.Result // written before done is closed
	cancel context.CancelFunc
}

// StartIPRev starts the iprev check of the client ip, in the background
// unless the resolver has every answer in memory. It returns nil when the
// policy has iprev off, ip is unknown or internal. Stop releases the
// check.
func (e *Engine) StartIPRev(ctx context.Context, ip netip.Addr) *ClientCheck {
	// Internal clients are not judged: their check would go unread.
	if e.Policy.IPRev != IPRevHeader || !ip.IsValid() || inNetworks(e.Policy.InternalNetworks, ip) {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &ClientCheck{ip: ip.Unmap(), done: make(chan struct{}), cancel: cancel}
	check := func(ctx context.Context) { c.res = iprev.Verify(ctx, e.Resolver, c.ip) }
	if dnscache.FromMemory(ctx, e.Resolver, check) {
		close(c.done)
		return c
	}
	go func() {
		defer close(c.done)
		check(ctx)
	}()
	return c
}

// Stop cancels the check if it is still running. It is safe on nil.
func (c *ClientCheck) Stop() {
	if c != nil {
		c.cancel()
	}
}

// wait returns the result, or temperror when ctx ends first.
func (c *ClientCheck) wait(ctx context.Context) iprev.Result {
	select {
	case <-c.done:
		return c.res
	case <-ctx.Done():
		return iprev.Result{Status: verify.StatusTemperror, IP: c.ip, Err: errors.Join(iprev.ErrDNS, ctx.Err())}
	}
}

// ipRev starts the message's own check when the connection did not (the
// check command, a client whose address changed), or returns the
// connection's.
func (m *Evaluation) ipRev() *ClientCheck {
	c := m.env.IPRev
	if c == nil || c.ip != m.env.ClientIP.Unmap() {
		c = m.e.StartIPRev(m.ctx, m.env.ClientIP)
	}
	return c
}

// appendIPRev waits for the iprev check, if any, records it in v and adds
// its resinfo to results.
func (m *Evaluation) appendIPRev(v *Verdict, results []authres.Result) []authres.Result {
	c := m.env.IPRev
	if c == nil {
		return results
	}
	r := c.wait(m.ctx)
	v.IPRev = &r
	return append(results, publicIPRev(r))
}

// publicIPRev converts an iprev result to its resinfo (RFC 8601 §2.7.3,
// §3):
//
//	iprev=<result> reason="<why>" policy.iprev=<address> (<name>)
func publicIPRev(r iprev.Result) authres.Result {
	out := authres.Result{Method: "iprev", Value: r.Status, PropsComment: r.Name}
	if r.IP.IsValid() {
		out.Props = []authres.Property{{Type: "policy", Name: "iprev", Value: r.IP.String()}}
	}
	switch {
	case r.Err == nil:
	case errors.Is(r.Err, iprev.ErrNoPTR), errors.Is(r.Err, iprev.ErrMismatch):
		out.Reason = strings.TrimPrefix(errorsRoot(r.Err), "iprev: ")
	default:
		out.Reason = publicLookupReason(r.Err, "DNS lookup failed")
	}
	return out
}

// errorsRoot returns the text of the iprev sentinel err wraps.
func errorsRoot(err error) string {
	for _, e := range []error{iprev.ErrNoPTR, iprev.ErrMismatch} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return err.Error()
}
