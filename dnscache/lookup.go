package dnscache

import (
	"context"
	"net/netip"
	"slices"

	"github.com/miekg/dns"
)

// querier answers one question for a name already normalised (lower-case,
// no trailing dot). Every Resolver in this package is built on one: the
// Resolver methods below check the name, ask, and copy the records out.
// A failure is a *net.DNSError; a negative answer may come with a non-nil
// *answer carrying its TTL.
type querier interface {
	query(ctx context.Context, qtype uint16, name string) (*answer, error)
}

func ask(ctx context.Context, q querier, qtype uint16, name string) (*answer, AnswerInfo, error) {
	n, err := normalize(name)
	if err != nil {
		return nil, AnswerInfo{}, err
	}
	a, err := q.query(ctx, qtype, n)
	if err != nil {
		return nil, AnswerInfo{}, err
	}
	return a, AnswerInfo{Authentic: a.authentic}, nil
}

func lookupTXT(ctx context.Context, q querier, name string) ([]string, AnswerInfo, error) {
	a, res, err := ask(ctx, q, dns.TypeTXT, name)
	if err != nil {
		return nil, res, err
	}
	return slices.Clone(a.txt), res, nil
}

func lookupA(ctx context.Context, q querier, name string) ([]netip.Addr, AnswerInfo, error) {
	a, res, err := ask(ctx, q, dns.TypeA, name)
	if err != nil {
		return nil, res, err
	}
	return slices.Clone(a.addrs), res, nil
}

func lookupAAAA(ctx context.Context, q querier, name string) ([]netip.Addr, AnswerInfo, error) {
	a, res, err := ask(ctx, q, dns.TypeAAAA, name)
	if err != nil {
		return nil, res, err
	}
	return slices.Clone(a.addrs), res, nil
}

func lookupMX(ctx context.Context, q querier, name string) ([]MX, AnswerInfo, error) {
	a, res, err := ask(ctx, q, dns.TypeMX, name)
	if err != nil {
		return nil, res, err
	}
	return slices.Clone(a.mx), res, nil
}

func lookupPTR(ctx context.Context, q querier, addr netip.Addr) ([]string, AnswerInfo, error) {
	if !addr.IsValid() {
		return nil, AnswerInfo{}, NewError(ErrNXDomain, "", "", "invalid IP address", false)
	}
	name := ReverseName(addr)
	a, err := q.query(ctx, dns.TypePTR, name)
	if err != nil {
		return nil, AnswerInfo{}, err
	}
	return slices.Clone(a.ptr), AnswerInfo{Authentic: a.authentic}, nil
}

// typeName returns the mnemonic of a query type, for messages.
func typeName(qtype uint16) string {
	return dns.TypeToString[qtype]
}
