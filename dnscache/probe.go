package dnscache

import (
	"context"
	"fmt"
	"sync/atomic"
)

// ErrNotCached is the error of a lookup made in probe mode (WithProbe)
// that the resolver could not answer without asking the network: the
// answer was not in the cache, had expired, or was still being fetched.
// It wraps ErrTemporary, so a verifier that sees it gives a temperror;
// the caller of a probe discards that result and asks again normally.
var ErrNotCached = fmt.Errorf("%w: not in the cache (probe)", ErrTemporary)

// Probe records whether the lookups made with a probe context (WithProbe)
// were all answered from memory. It is safe for concurrent use.
type Probe struct {
	missed atomic.Bool
}

// Missed reports whether a lookup made with the probe's context could not
// be answered without the network, so that the work done with it must be
// done again with a normal context.
func (p *Probe) Missed() bool { return p.missed.Load() }

// probeCtx is the context WithProbe returns: the parent with the Probe as
// a value, in one allocation.
type probeCtx struct {
	context.Context
	p Probe
}

type probeKey struct{}

func (c *probeCtx) Value(key any) any {
	if key == (probeKey{}) {
		return &c.p
	}
	return c.Context.Value(key)
}

// WithProbe returns a context derived from ctx in which the resolvers of
// this package answer only from memory: a Cache from its fresh entries
// (positive or negative: exactly what a normal lookup would return), a
// Zone from its file, and neither a Cache nor a Client ever queries a
// server. A lookup that would need the network fails at once with a
// temporary *net.DNSError unwrapping to ErrNotCached, and is recorded in
// the returned Probe.
//
// It lets a caller run work synchronously when the answers are cached,
// and start it in the background only when they are not:
//
//	pctx, p := dnscache.WithProbe(ctx)
//	res := verify(pctx)
//	if p.Missed() {
//		go func() { res = verify(ctx) }() // result discarded above
//	}
//
// Only a Resolver for which CanProbe reports true honours probe mode;
// any other one makes its lookups as usual.
func WithProbe(ctx context.Context) (context.Context, *Probe) {
	c := &probeCtx{Context: ctx}
	return c, &c.p
}

// IsProbe reports whether ctx is a probe context (WithProbe, FromMemory):
// lookups made with it never wait for the network, so work done with it
// gains nothing from running lookups concurrently.
func IsProbe(ctx context.Context) bool { return probing(ctx) != nil }

// probing returns the Probe of ctx, or nil when ctx is not in probe mode.
func probing(ctx context.Context) *Probe {
	p, _ := ctx.Value(probeKey{}).(*Probe)
	return p
}

// notCached records a lookup of name that a probe could not answer and
// returns its error.
func (p *Probe) notCached(name string) error {
	p.missed.Store(true)
	e := NewError(ErrTemporary, name, "", "not cached (probe)", false)
	e.UnwrapErr = ErrNotCached
	return e
}

// FromMemory runs work with a probe context (WithProbe) when r honours
// probe mode, and reports whether every lookup work made was answered
// from memory: then what work computed stands, and no goroutine or
// network was needed. It reports false without running work when r cannot
// be probed, and false when a lookup missed: the caller then does the
// work again normally (in the background, typically), discarding what
// this run left.
func FromMemory(ctx context.Context, r Resolver, work func(ctx context.Context)) bool {
	if !CanProbe(r) {
		return false
	}
	pctx, p := WithProbe(ctx)
	work(pctx)
	return !p.Missed()
}

// Prober is implemented by the resolvers that honour probe mode
// (WithProbe): Cache, Client, Zone, and the resolvers New and Overlay
// return. A wrapper of a Resolver implements it by asking CanProbe of
// what it wraps.
type Prober interface {
	// CanProbe reports whether lookups with a WithProbe context are
	// answered from memory only.
	CanProbe() bool
}

// CanProbe reports whether r honours probe mode (see WithProbe): callers
// must not probe any other Resolver, which would make its lookups, with
// their delays, on the caller's goroutine.
func CanProbe(r Resolver) bool {
	p, ok := r.(Prober)
	return ok && p.CanProbe()
}

// CanProbe implements Prober: a Cache never asks upstream in probe mode.
func (c *Cache) CanProbe() bool { return true }

// CanProbe implements Prober: a Client sends nothing in probe mode.
func (c *Client) CanProbe() bool { return true }

// CanProbe implements Prober: a Zone answers from memory.
func (z *Zone) CanProbe() bool { return true }

// CanProbe implements Prober: the zone answers from memory, and other
// names are probed upstream when upstream honours probe mode.
func (o *overlay) CanProbe() bool { return CanProbe(o.upstream) }

var (
	_ Prober = (*Cache)(nil)
	_ Prober = (*Client)(nil)
	_ Prober = (*Zone)(nil)
	_ Prober = (*overlay)(nil)
	_ Prober = noStats{}
)
