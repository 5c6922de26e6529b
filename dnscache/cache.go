package dnscache

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// Upstream is what a Cache wraps: a source of answers that reports how long
// each may be kept (the TTLs of positive answers and the RFC 2308 TTL of
// negative ones). *Client implements it. The interface is sealed: its
// methods are unexported, as answers carry detail that stays inside this
// package.
type Upstream interface {
	querier
	// budget is the longest one query can take.
	budget() time.Duration
}

// Cache is a Resolver that keeps the answers of an Upstream for as long as
// their TTLs allow, within the bounds of its Config:
//
//   - positive answers: the lowest TTL of the records (and of the CNAMEs
//     that led to them), clamped to [MinTTL, MaxTTL];
//   - NXDOMAIN and NODATA: the RFC 2308 §5 TTL from the SOA record, clamped
//     to [MinTTL, MaxNegativeTTL], or NegativeTTL when there was no SOA;
//   - temporary failures: TempFailTTL (RFC 2308 §7.1 allows up to 5 min).
//
// The cache holds at most CacheSize answers and evicts the least recently
// used. Concurrent lookups of the same question share one upstream query,
// run on a context detached from the callers' (so that one caller giving up
// does not fail the others) and bounded by the upstream's own timeouts;
// each caller still returns as soon as its own context ends.
type Cache struct {
	up      Upstream
	entries *lru.Cache[cacheKey, *cacheEntry]
	flights singleflight.Group
	now     func() time.Time

	minTTL, maxTTL, negTTL, maxNegTTL, tempTTL time.Duration

	hits, misses, queries, failures, cacheOnlyMisses atomic.Uint64
}

type cacheKey struct {
	qtype uint16
	name  string
}

// cacheEntry is one remembered outcome: an answer, or an error (with, for
// a negative answer, the answer that carried its TTL).
type cacheEntry struct {
	ans     *answer
	err     *net.DNSError
	expires time.Time
}

// NewCache returns a Cache in front of up, configured by the cache fields of
// cfg (CacheSize, MinTTL, MaxTTL, NegativeTTL, MaxNegativeTTL, TempFailTTL,
// Now). A CacheSize below 1 is taken as 1; to run without a cache, use the
// Client directly.
func NewCache(up Upstream, cfg Config) *Cache {
	cfg = cfg.withDefaults()
	entries, err := lru.New[cacheKey, *cacheEntry](max(cfg.CacheSize, 1))
	if err != nil {
		panic("dnscache: " + err.Error()) // only for a size below 1
	}
	return &Cache{
		up:        up,
		entries:   entries,
		now:       cfg.Now,
		minTTL:    cfg.MinTTL,
		maxTTL:    cfg.MaxTTL,
		negTTL:    cfg.NegativeTTL,
		maxNegTTL: cfg.MaxNegativeTTL,
		tempTTL:   cfg.TempFailTTL,
	}
}

// Stats are a Cache's counters since it was made.
//
// A lookup in cache-only mode (WithCacheOnly) counts in Hits when the
// cache answers it, and otherwise only in CacheOnlyMisses: the caller then
// makes the lookup again normally, and that one counts as the miss. (When
// work in cache-only mode had some lookups answered before one missed, the
// caller's second pass counts their hits again.)
type Stats struct {
	Hits            uint64 // lookups answered from the cache
	Misses          uint64 // lookups that waited for an upstream query
	Queries         uint64 // upstream queries made (Misses less the shared ones)
	Errors          uint64 // upstream queries that failed temporarily
	CacheOnlyMisses uint64 // cache-only lookups the cache could not answer
	Entries         int    // answers held now, expired ones included
}

// Stats returns the counters of c.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits:            c.hits.Load(),
		Misses:          c.misses.Load(),
		Queries:         c.queries.Load(),
		Errors:          c.failures.Load(),
		CacheOnlyMisses: c.cacheOnlyMisses.Load(),
		Entries:         c.entries.Len(),
	}
}

// Purge forgets every cached answer.
func (c *Cache) Purge() {
	c.entries.Purge()
}

// budget implements Upstream, so caches can be stacked.
func (c *Cache) budget() time.Duration {
	return c.up.budget()
}

// query implements querier.
func (c *Cache) query(ctx context.Context, qtype uint16, name string) (*answer, error) {
	k := cacheKey{qtype, name}
	if e, ok := c.entries.Get(k); ok && c.now().Before(e.expires) {
		c.hits.Add(1)
		return e.result()
	}
	if p := cacheOnlyOf(ctx); p != nil {
		// Cache-only mode: never upstream. Not a miss: the caller asks again
		// normally, and that lookup is the one counted.
		c.cacheOnlyMisses.Add(1)
		return nil, p.notCached(name)
	}
	c.misses.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, contextError(name, "", err)
	}
	ch := c.flights.DoChan(strconv.Itoa(int(qtype))+" "+name, func() (any, error) {
		return c.fill(ctx, k), nil
	})
	select {
	case r := <-ch:
		return r.Val.(*cacheEntry).result()
	case <-ctx.Done():
		return nil, contextError(name, "", ctx.Err())
	}
}

// fill asks upstream the question k and caches the outcome. It runs once
// for all concurrent callers, on a context that keeps the values of the
// first caller's but none of its cancellation.
func (c *Cache) fill(ctx context.Context, k cacheKey) *cacheEntry {
	// A caller that missed just before another flight stored its answer
	// finds it here instead of asking again.
	if e, ok := c.entries.Peek(k); ok && c.now().Before(e.expires) {
		return e
	}
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.up.budget())
	defer cancel()
	c.queries.Add(1)
	a, err := c.up.query(qctx, k.qtype, k.name)

	e := &cacheEntry{ans: a}
	if err != nil {
		if !errors.As(err, &e.err) {
			e.err = NewError(ErrTemporary, k.name, "", err.Error(), false)
		}
		if errors.Is(err, ErrTemporary) {
			c.failures.Add(1)
		}
	}
	if ttl := c.keep(a, err); ttl > 0 {
		e.expires = c.now().Add(ttl)
		c.entries.Add(k, e)
	} else {
		c.entries.Remove(k)
	}
	return e
}

// keep returns how long the outcome (a, err) of a query may be cached.
func (c *Cache) keep(a *answer, err error) time.Duration {
	switch {
	case err == nil:
		return clamp(seconds(a.ttl), c.minTTL, c.maxTTL)
	case errors.Is(err, ErrTemporary):
		return c.tempTTL
	case a != nil && a.ttlKnown:
		// RFC 2308 §5: the TTL of the SOA record or its MINIMUM field,
		// whichever is lower (interpret has computed it).
		return clamp(seconds(a.ttl), c.minTTL, c.maxNegTTL)
	default:
		return min(c.negTTL, c.maxNegTTL)
	}
}

func seconds(s uint32) time.Duration { return time.Duration(s) * time.Second }

func clamp(d, lo, hi time.Duration) time.Duration {
	return min(max(d, lo), hi)
}

// result returns the outcome held by e; an error is copied, so that no two
// callers share one *net.DNSError.
func (e *cacheEntry) result() (*answer, error) {
	if e.err != nil {
		err := *e.err
		return e.ans, &err
	}
	return e.ans, nil
}

// LookupTXT implements Resolver.
func (c *Cache) LookupTXT(ctx context.Context, name string) ([]string, AnswerInfo, error) {
	return lookupTXT(ctx, c, name)
}

// LookupA implements Resolver.
func (c *Cache) LookupA(ctx context.Context, name string) ([]netip.Addr, AnswerInfo, error) {
	return lookupA(ctx, c, name)
}

// LookupAAAA implements Resolver.
func (c *Cache) LookupAAAA(ctx context.Context, name string) ([]netip.Addr, AnswerInfo, error) {
	return lookupAAAA(ctx, c, name)
}

// LookupMX implements Resolver.
func (c *Cache) LookupMX(ctx context.Context, name string) ([]MX, AnswerInfo, error) {
	return lookupMX(ctx, c, name)
}

// LookupPTR implements Resolver.
func (c *Cache) LookupPTR(ctx context.Context, addr netip.Addr) ([]string, AnswerInfo, error) {
	return lookupPTR(ctx, c, addr)
}

var (
	_ Resolver = (*Cache)(nil)
	_ Upstream = (*Client)(nil)
	_ Upstream = (*Cache)(nil)
)
