// Package dnstest provides an in-memory dnscache.Resolver for tests: records
// from maps, CNAME chains, injected failures, and a log of the queries made.
package dnstest

import (
	"context"
	"net/netip"
	"strings"
	"sync"

	"github.com/authmilter/authmilter/dnscache"
)

// Failure selects how a lookup fails.
type Failure int

const (
	// Timeout makes the lookup a temporary failure flagged as a timeout.
	Timeout Failure = iota + 1
	// ServFail makes the lookup a temporary failure (SERVFAIL).
	ServFail
)

// Resolver is a fake dnscache.Resolver. Names are matched without regard to
// case or a trailing dot. A name with no records at all is NXDOMAIN; a name
// with records of another type is NODATA. Populate the maps before use; the
// methods are safe for concurrent use once populated.
type Resolver struct {
	TXT   map[string][]string
	A     map[string][]string // addresses as text
	AAAA  map[string][]string
	MX    map[string][]dnscache.MX
	PTR   map[string][]string // keyed by reverse name (dnscache.ReverseName)
	CNAME map[string]string

	// Fail makes lookups of "name" (every type) or "name/TYPE"
	// (e.g. "example.com/TXT") fail.
	Fail map[string]Failure
	// FailEmpty makes every lookup at a name fail with the given failure
	// when it has no record of the asked type (instead of NODATA).
	FailEmpty map[string]Failure
	// Authentic sets AnswerInfo.Authentic on every answer.
	Authentic bool

	mu      sync.Mutex
	queries []string
}

// Queries returns the queries made so far, as "TYPE name" strings.
func (r *Resolver) Queries() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.queries...)
}

// ResetQueries forgets the logged queries.
func (r *Resolver) ResetQueries() {
	r.mu.Lock()
	r.queries = nil
	r.mu.Unlock()
}

func norm(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

func lookupMap[T any](m map[string]T, name string) (T, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if norm(k) == name {
			return v, true
		}
	}
	var zero T
	return zero, false
}

func (r *Resolver) exists(name string) bool {
	if _, ok := lookupMap(r.TXT, name); ok {
		return true
	}
	if _, ok := lookupMap(r.A, name); ok {
		return true
	}
	if _, ok := lookupMap(r.AAAA, name); ok {
		return true
	}
	if _, ok := lookupMap(r.MX, name); ok {
		return true
	}
	if _, ok := lookupMap(r.PTR, name); ok {
		return true
	}
	if _, ok := lookupMap(r.CNAME, name); ok {
		return true
	}
	_, ok := lookupMap(r.FailEmpty, name)
	return ok
}

// resolve follows CNAMEs from name and returns the final name, or an error.
func (r *Resolver) resolve(ctx context.Context, qtype, name string, has func(string) bool) (string, error) {
	name = norm(name)
	r.mu.Lock()
	r.queries = append(r.queries, qtype+" "+name)
	r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return "", dnscache.NewError(dnscache.ErrTemporary, name, "dnstest", err.Error(), true)
	}
	seen := map[string]bool{}
	for {
		if f, ok := lookupMap(r.Fail, name+"/"+qtype); ok {
			return "", failErr(f, name)
		}
		if f, ok := lookupMap(r.Fail, name); ok {
			return "", failErr(f, name)
		}
		if has(name) {
			return name, nil
		}
		if target, ok := lookupMap(r.CNAME, name); ok {
			if seen[name] {
				return "", dnscache.NewError(dnscache.ErrTemporary, name, "dnstest", "CNAME loop", false)
			}
			seen[name] = true
			name = norm(target)
			continue
		}
		if f, ok := lookupMap(r.FailEmpty, name); ok {
			return "", failErr(f, name)
		}
		if r.exists(name) {
			return "", dnscache.NewError(dnscache.ErrNoData, name, "dnstest", "", false)
		}
		return "", dnscache.NewError(dnscache.ErrNXDomain, name, "dnstest", "", false)
	}
}

func failErr(f Failure, name string) error {
	if f == Timeout {
		return dnscache.NewError(dnscache.ErrTemporary, name, "dnstest", "i/o timeout", true)
	}
	return dnscache.NewError(dnscache.ErrTemporary, name, "dnstest", "SERVFAIL", false)
}

func hasKey[T any](m map[string][]T) func(string) bool {
	return func(n string) bool {
		v, ok := lookupMap(m, n)
		return ok && len(v) > 0
	}
}

// LookupTXT implements dnscache.Resolver.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, dnscache.AnswerInfo, error) {
	n, err := r.resolve(ctx, "TXT", name, hasKey(r.TXT))
	if err != nil {
		return nil, dnscache.AnswerInfo{}, err
	}
	v, _ := lookupMap(r.TXT, n)
	return append([]string(nil), v...), dnscache.AnswerInfo{Authentic: r.Authentic}, nil
}

func (r *Resolver) addrs(ctx context.Context, qtype string, m map[string][]string, name string) ([]netip.Addr, dnscache.AnswerInfo, error) {
	n, err := r.resolve(ctx, qtype, name, hasKey(m))
	if err != nil {
		return nil, dnscache.AnswerInfo{}, err
	}
	v, _ := lookupMap(m, n)
	out := make([]netip.Addr, 0, len(v))
	for _, s := range v {
		a, perr := netip.ParseAddr(s)
		if perr != nil {
			panic("dnstest: bad address " + s)
		}
		out = append(out, a)
	}
	return out, dnscache.AnswerInfo{Authentic: r.Authentic}, nil
}

// LookupA implements dnscache.Resolver.
func (r *Resolver) LookupA(ctx context.Context, name string) ([]netip.Addr, dnscache.AnswerInfo, error) {
	return r.addrs(ctx, "A", r.A, name)
}

// LookupAAAA implements dnscache.Resolver.
func (r *Resolver) LookupAAAA(ctx context.Context, name string) ([]netip.Addr, dnscache.AnswerInfo, error) {
	return r.addrs(ctx, "AAAA", r.AAAA, name)
}

// LookupMX implements dnscache.Resolver.
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]dnscache.MX, dnscache.AnswerInfo, error) {
	n, err := r.resolve(ctx, "MX", name, hasKey(r.MX))
	if err != nil {
		return nil, dnscache.AnswerInfo{}, err
	}
	v, _ := lookupMap(r.MX, n)
	return append([]dnscache.MX(nil), v...), dnscache.AnswerInfo{Authentic: r.Authentic}, nil
}

// LookupPTR implements dnscache.Resolver.
func (r *Resolver) LookupPTR(ctx context.Context, addr netip.Addr) ([]string, dnscache.AnswerInfo, error) {
	n, err := r.resolve(ctx, "PTR", dnscache.ReverseName(addr), hasKey(r.PTR))
	if err != nil {
		return nil, dnscache.AnswerInfo{}, err
	}
	v, _ := lookupMap(r.PTR, n)
	return append([]string(nil), v...), dnscache.AnswerInfo{Authentic: r.Authentic}, nil
}

var _ dnscache.Resolver = (*Resolver)(nil)
