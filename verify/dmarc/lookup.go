package dmarc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/authmilter/authmilter/dnscache"
)

// lookupRecord queries the TXT records at _dmarc.<domain> (RFC 9989 §4.5)
// and keeps those that start with v=DMARC1 (§4.10 step 2). It returns the
// record when exactly one remains, and the number that remained: 0 for
// none, more than 1 when several were found (callers discard them all,
// §4.10 step 2, or stop discovery, RFC 7489 §6.6.3 step 5).
//
// NXDOMAIN and NODATA mean "no record". Any other failure is returned
// wrapped in ErrDNS (temperror).
func lookupRecord(ctx context.Context, r dnscache.Resolver, domain string) (*Record, int, error) {
	name := "_dmarc." + domain
	txts, _, err := r.LookupTXT(ctx, name)
	if err != nil {
		if dnscache.IsNotFound(err) {
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("%w: TXT %s: %w", ErrDNS, name, err)
	}
	var rec *Record
	n := 0
	for _, txt := range txts {
		p, err := ParseRecord(txt)
		if err != nil {
			continue // not a DMARC record: discarded (§4.10 step 2)
		}
		n++
		rec = p
	}
	if n != 1 {
		return nil, n, nil
	}
	return rec, 1, nil
}

// domainExists reports whether the domain exists in the sense of RFC 9989
// §3.2.13 and Appendix A.4: it does not when a query for it is answered
// NXDOMAIN (RFC 8020: then nothing exists at or below it); NODATA, or any
// answer, means it exists. One A query decides.
func domainExists(ctx context.Context, r dnscache.Resolver, domain string) (bool, error) {
	_, _, err := r.LookupA(ctx, domain)
	switch {
	case err == nil, errors.Is(err, dnscache.ErrNoData):
		return true, nil
	case errors.Is(err, dnscache.ErrNXDomain):
		return false, nil
	}
	return false, fmt.Errorf("%w: A %s: %w", ErrDNS, domain, err)
}

// memoResolver remembers TXT answers for the length of one evaluation, so
// that the tree walks for the Author Domain and the identifiers, which share
// their upper names, query each name once (cases.yml: "an implementation
// that caches may skip repeats"). It is safe for concurrent use: the
// concurrent lookups of a walk, or of two walks, for one name make one
// query. It is never kept beyond one Evaluate call.
type memoResolver struct {
	dnscache.Resolver
	mu  sync.Mutex
	txt map[string]*memoTXT
	// dropped holds the names whose lookup was given up (a concurrent walk
	// that stopped before it needed them): a later walk asks them only if
	// it reaches them, not ahead of need (see TreeWalk).
	dropped map[string]bool
}

// memoTXT is one answer; done is closed when it is filled in.
type memoTXT struct {
	done chan struct{}
	txts []string
	res  dnscache.AnswerInfo
	err  error
	// forgotten: the lookup was not made or given up (see LookupTXT);
	// the answer is its asker's only.
	forgotten bool
}

func newMemoResolver(r dnscache.Resolver) *memoResolver {
	if m, ok := r.(*memoResolver); ok {
		return m
	}
	return &memoResolver{Resolver: r, txt: map[string]*memoTXT{}}
}

// HonoursCacheOnly implements dnscache.CacheOnlyResolver for the resolver it wraps.
func (m *memoResolver) HonoursCacheOnly() bool { return dnscache.HonoursCacheOnly(m.Resolver) }

// LookupTXT implements dnscache.Resolver. An answer that only says the
// lookup was not made (a cache-only lookup that missed, a caller that gave
// up) is not remembered: a later lookup asks again, and so does a caller
// that was waiting for it while its own context is still live (another
// walk's cancellation is not an answer about the name).
func (m *memoResolver) LookupTXT(ctx context.Context, name string) ([]string, dnscache.AnswerInfo, error) {
	for {
		m.mu.Lock()
		a, ok := m.txt[name]
		if !ok {
			break // m.mu held: this caller asks
		}
		m.mu.Unlock()
		select {
		case <-a.done:
			if a.forgotten && ctx.Err() == nil {
				continue
			}
			return a.txts, a.res, a.err
		case <-ctx.Done():
			return nil, dnscache.AnswerInfo{}, dnscache.NewError(dnscache.ErrTemporary, name, "", ctx.Err().Error(), false)
		}
	}
	a := &memoTXT{done: make(chan struct{})}
	m.txt[name] = a
	m.mu.Unlock()
	a.txts, a.res, a.err = m.Resolver.LookupTXT(ctx, name)
	if a.err != nil && (ctx.Err() != nil || errors.Is(a.err, dnscache.ErrNotCached)) {
		a.forgotten = true
		m.mu.Lock()
		delete(m.txt, name)
		if ctx.Err() != nil {
			if m.dropped == nil {
				m.dropped = map[string]bool{}
			}
			m.dropped[name] = true
		}
		m.mu.Unlock()
	}
	close(a.done)
	return a.txts, a.res, a.err
}

// wasDropped reports whether a lookup of name was given up before it was
// answered.
func (m *memoResolver) wasDropped(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropped[name]
}
