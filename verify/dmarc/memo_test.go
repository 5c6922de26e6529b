package dmarc

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
)

// firstCallBlocks holds the first TXT lookup until its context ends (a
// walk that stopped and cancelled what it no longer needed) and answers
// the later ones from the embedded resolver.
type firstCallBlocks struct {
	*dnstest.Resolver
	calls   atomic.Int32
	started chan struct{}
}

func (f *firstCallBlocks) LookupTXT(ctx context.Context, name string) ([]string, dnscache.AnswerInfo, error) {
	if f.calls.Add(1) == 1 {
		close(f.started)
		<-ctx.Done()
		return nil, dnscache.AnswerInfo{}, dnscache.NewError(dnscache.ErrTemporary, name, "", ctx.Err().Error(), false)
	}
	return f.Resolver.LookupTXT(ctx, name)
}

// TestMemoWaiterOutlivesAskerCancel: two walks of one evaluation share a
// name; the walk that asked it first stops (psd=, or it found what it
// needed) and cancels the lookup while the other is waiting for the same
// answer. The cancellation is not an answer about the name: the waiting
// walk, whose context is live, must get the real answer, not a temperror
// that would make DMARC temperror for a message that aligns.
func TestMemoWaiterOutlivesAskerCancel(t *testing.T) {
	t.Parallel()
	const name = "_dmarc.b.victim.example"
	r := &firstCallBlocks{
		Resolver: &dnstest.Resolver{TXT: map[string][]string{name: {"v=DMARC1; p=reject"}}},
		started:  make(chan struct{}),
	}
	m := newMemoResolver(r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	askerCtx, askerCancel := context.WithCancel(ctx)
	askerDone := make(chan error, 1)
	go func() {
		_, _, err := m.LookupTXT(askerCtx, name)
		askerDone <- err
	}()
	<-r.started
	type reply struct {
		txts []string
		err  error
	}
	waiter := make(chan reply, 1)
	go func() {
		txts, _, err := m.LookupTXT(ctx, name)
		waiter <- reply{txts, err}
	}()
	// Let the waiter reach the shared entry before the asker gives up.
	time.Sleep(50 * time.Millisecond)
	askerCancel()
	if err := <-askerDone; err == nil {
		t.Fatal("the cancelled asker got an answer")
	}
	got := <-waiter
	if got.err != nil || len(got.txts) != 1 {
		t.Fatalf("waiter with a live context got %q, %v: another walk's cancellation became its answer", got.txts, got.err)
	}
}
