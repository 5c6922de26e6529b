package dkimkey

import (
	"context"
	"sync"

	"github.com/authmilter/authmilter/dnscache"
)

// Future is a key lookup started by Start: complete from the start when
// the resolver had the answer in memory, running in the background
// otherwise.
type Future struct {
	done chan struct{} // closed when the lookup ends; nil: complete at Start
	key  *Key
	err  error
}

// Start looks up the key for selector and domain (see Lookup), so that the
// lookup runs while the message is read. When r honours cache-only mode
// (dnscache.HonoursCacheOnly) and answers from memory, as a warm cache does,
// the lookup completes here, on the caller's goroutine, and no goroutine is
// started; otherwise it runs in a new goroutine on ctx, which wg (if not nil)
// counts until it ends.
func Start(ctx context.Context, r dnscache.Resolver, selector, domain string, wg *sync.WaitGroup) *Future {
	f := &Future{}
	if dnscache.FromMemory(ctx, r, func(ctx context.Context) { f.key, f.err = Lookup(ctx, r, selector, domain) }) {
		return f
	}
	f.key, f.err = nil, nil
	f.done = make(chan struct{})
	if wg != nil {
		wg.Add(1)
	}
	go func() {
		if wg != nil {
			defer wg.Done()
		}
		defer close(f.done)
		f.key, f.err = Lookup(ctx, r, selector, domain)
	}()
	return f
}

// Wait waits for the lookup to end or ctx to end, and reports whether the
// lookup ended (also when it did just as ctx ended); Result may be called
// only then.
func (f *Future) Wait(ctx context.Context) bool {
	if f.done == nil {
		return true
	}
	select {
	case <-f.done:
		return true
	case <-ctx.Done():
		select {
		case <-f.done:
			return true
		default:
			return false
		}
	}
}

// Result returns the outcome of the lookup, once Wait has reported that
// it ended.
func (f *Future) Result() (*Key, error) { return f.key, f.err }
