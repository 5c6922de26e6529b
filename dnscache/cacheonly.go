package dnscache

import (
	"context"
	"fmt"
	"sync/atomic"
)

// ErrNotCached is the error of a lookup made in cache-only mode
// (WithCacheOnly) that the resolver could not answer without asking the
// network: the answer was not in the cache, had expired, or was still
// being fetched. It wraps ErrTemporary, so a verifier that sees it gives a
// temperror; the caller discards that result and asks again normally.
var ErrNotCached = fmt.Errorf("%w: not in the cache (cache-only lookup)", ErrTemporary)

// CacheOnly records whether the lookups made with a cache-only context
// (WithCacheOnly) were all answered from memory. It is safe for concurrent
// use.
type CacheOnly struct {
	missed atomic.Bool
}

// Missed reports whether a lookup made with its context could not
// be answered without the network, so that the work done with it must be
// done again with a normal context.
func (p *CacheOnly) Missed() bool { return p.missed.Load() }

// cacheOnlyCtx is the context WithCacheOnly returns: the parent with the
// CacheOnly as a value, in one allocation.
type cacheOnlyCtx struct {
	context.Context
	p CacheOnly
}

type cacheOnlyKey struct{}

func (c *cacheOnlyCtx) Value(key any) any {
	if key == (cacheOnlyKey{}) {
		return &c.p
	}
	return c.Context.Value(key)
}

// WithCacheOnly returns a context derived from ctx in which the resolvers of
// this package answer only from memory: a Cache from its fresh entries
// (positive or negative: exactly what a normal lookup would return), a
// Zone from its file, and neither a Cache nor a Client ever queries a
// server. A lookup that would need the network fails at once with a
// temporary *net.DNSError unwrapping to ErrNotCached, and is recorded in
// the returned CacheOnly.
//
// It lets a caller run work synchronously when the answers are cached,
// and start it in the background only when they are not:
//
//	pctx, p := dnscache.WithCacheOnly(ctx)
//	res := verify(pctx)
//	if p.Missed() {
//		go func() { res = verify(ctx) }() // result discarded above
//	}
//
// Only a Resolver for which HonoursCacheOnly reports true honours
// cache-only mode; any other one makes its lookups as usual.
func WithCacheOnly(ctx context.Context) (context.Context, *CacheOnly) {
	c := &cacheOnlyCtx{Context: ctx}
	return c, &c.p
}

// IsCacheOnly reports whether ctx is a cache-only context (WithCacheOnly,
// FromMemory): lookups made with it never wait for the network, so work
// done with it gains nothing from running lookups concurrently.
func IsCacheOnly(ctx context.Context) bool { return cacheOnlyOf(ctx) != nil }

// cacheOnlyOf returns the CacheOnly of ctx, or nil when ctx is not in
// cache-only mode.
func cacheOnlyOf(ctx context.Context) *CacheOnly {
	p, _ := ctx.Value(cacheOnlyKey{}).(*CacheOnly)
	return p
}

// notCached records that a cache-only lookup of name could not be answered
// from memory and returns its error.
func (p *CacheOnly) notCached(name string) error {
	p.missed.Store(true)
	e := NewError(ErrTemporary, name, "", "not cached (cache-only lookup)", false)
	e.UnwrapErr = ErrNotCached
	return e
}

// FromMemory runs work with a cache-only context (WithCacheOnly) when r
// honours cache-only mode, and reports whether every lookup work made was
// answered from memory: then what work computed stands, and no goroutine
// or network was needed. It reports false without running work when r
// does not honour cache-only mode, and false when a lookup missed: the
// caller then does the
// work again normally (in the background, typically), discarding what
// this run left.
func FromMemory(ctx context.Context, r Resolver, work func(ctx context.Context)) bool {
	if !HonoursCacheOnly(r) {
		return false
	}
	pctx, p := WithCacheOnly(ctx)
	work(pctx)
	return !p.Missed()
}

// CacheOnlyResolver is implemented by the resolvers that honour cache-only
// mode (WithCacheOnly): Cache, Client, Zone, and the resolvers New and
// Overlay return. A wrapper of a Resolver implements it by asking
// HonoursCacheOnly of what it wraps.
type CacheOnlyResolver interface {
	// HonoursCacheOnly reports whether lookups with a WithCacheOnly context
	// are answered from memory only.
	HonoursCacheOnly() bool
}

// HonoursCacheOnly reports whether r honours cache-only mode (see
// WithCacheOnly): callers must not give a cache-only context to any other
// Resolver, which would make its lookups, with their delays, on the
// caller's goroutine.
func HonoursCacheOnly(r Resolver) bool {
	p, ok := r.(CacheOnlyResolver)
	return ok && p.HonoursCacheOnly()
}

// HonoursCacheOnly implements CacheOnlyResolver: a Cache never asks
// upstream in cache-only mode.
func (c *Cache) HonoursCacheOnly() bool { return true }

// HonoursCacheOnly implements CacheOnlyResolver: a Client sends nothing in
// cache-only mode.
func (c *Client) HonoursCacheOnly() bool { return true }

// HonoursCacheOnly implements CacheOnlyResolver: a Zone answers from memory.
func (z *Zone) HonoursCacheOnly() bool { return true }

// HonoursCacheOnly implements CacheOnlyResolver: the zone answers from
// memory, and other names are looked up upstream in cache-only mode when
// upstream honours it.
func (o *overlay) HonoursCacheOnly() bool { return HonoursCacheOnly(o.upstream) }

var (
	_ CacheOnlyResolver = (*Cache)(nil)
	_ CacheOnlyResolver = (*Client)(nil)
	_ CacheOnlyResolver = (*Zone)(nil)
	_ CacheOnlyResolver = (*overlay)(nil)
	_ CacheOnlyResolver = noStats{}
)
