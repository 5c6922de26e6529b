package dnscache

import (
	"context"
	"net/netip"

	"github.com/miekg/dns"
)

// Overlay returns a Resolver that answers names covered by zone (see
// Zone.Covers) from the zone alone, and every other name from upstream.
// When a CNAME in the zone leads outside it, the target is looked up
// upstream; for PTR this needs an upstream from this package (Client or
// Cache), any other Resolver gives a temporary failure.
//
// The returned Resolver has a Stats method, reporting upstream's counters
// when upstream has one (a Cache).
func Overlay(zone *Zone, upstream Resolver) Resolver {
	o := &overlay{zone: zone, upstream: upstream}
	if q, ok := upstream.(querier); ok {
		o.up = q
	} else {
		o.up = resolverQuerier{upstream}
	}
	return o
}

type overlay struct {
	zone     *Zone
	upstream Resolver
	up       querier
}

// query implements querier.
func (o *overlay) query(ctx context.Context, qtype uint16, name string) (*answer, error) {
	if !o.zone.covers(name) {
		return o.up.query(ctx, qtype, name)
	}
	a, outside, err := o.zone.resolve(qtype, name)
	if err == nil && outside != "" {
		return o.up.query(ctx, qtype, outside)
	}
	return a, err
}

// Stats returns the counters of the upstream, if it keeps any.
func (o *overlay) Stats() Stats {
	if s, ok := o.upstream.(interface{ Stats() Stats }); ok {
		return s.Stats()
	}
	return Stats{}
}

// LookupTXT implements Resolver.
func (o *overlay) LookupTXT(ctx context.Context, name string) ([]string, AnswerInfo, error) {
	return lookupTXT(ctx, o, name)
}

// LookupA implements Resolver.
func (o *overlay) LookupA(ctx context.Context, name string) ([]netip.Addr, AnswerInfo, error) {
	return lookupA(ctx, o, name)
}

// LookupAAAA implements Resolver.
func (o *overlay) LookupAAAA(ctx context.Context, name string) ([]netip.Addr, AnswerInfo, error) {
	return lookupAAAA(ctx, o, name)
}

// LookupMX implements Resolver.
func (o *overlay) LookupMX(ctx context.Context, name string) ([]MX, AnswerInfo, error) {
	return lookupMX(ctx, o, name)
}

// LookupPTR implements Resolver.
func (o *overlay) LookupPTR(ctx context.Context, addr netip.Addr) ([]string, AnswerInfo, error) {
	return lookupPTR(ctx, o, addr)
}

// resolverQuerier adapts a Resolver from outside this package to querier.
type resolverQuerier struct{ r Resolver }

func (rq resolverQuerier) query(ctx context.Context, qtype uint16, name string) (*answer, error) {
	var (
		a   = &answer{}
		res AnswerInfo
		err error
	)
	switch qtype {
	case dns.TypeTXT:
		a.txt, res, err = rq.r.LookupTXT(ctx, name)
	case dns.TypeA:
		a.addrs, res, err = rq.r.LookupA(ctx, name)
	case dns.TypeAAAA:
		a.addrs, res, err = rq.r.LookupAAAA(ctx, name)
	case dns.TypeMX:
		a.mx, res, err = rq.r.LookupMX(ctx, name)
	default:
		return nil, NewError(ErrTemporary, name, "", typeName(qtype)+" lookup by name not supported by the upstream resolver", false)
	}
	if err != nil {
		return nil, err
	}
	a.authentic = res.Authentic
	return a, nil
}

var _ Resolver = (*overlay)(nil)
