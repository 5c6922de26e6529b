package procs

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestPolicy walks the policy through windows of given queues: one thread
// at rest, all when the queue is long, kept while they shorten it with a
// one-thread probe every Probe, given up (and one thread held for Hold)
// when they do not.
func TestPolicy(t *testing.T) {
	t.Parallel()
	const win = 100 * time.Millisecond
	type step struct {
		queued float64
		want   int
	}
	run := func(name string, max int, steps []step) {
		t.Helper()
		var p Policy
		now := time.Unix(1e9, 0)
		for i, st := range steps {
			now = now.Add(win)
			if got := p.Next(max, Sample{Wall: win, Queued: st.queued}, now); got != st.want {
				t.Errorf("%s: window %d (queued %.3f): %d threads, want %d", name, i, st.queued, got, st.want)
				return
			}
		}
	}
	idle := []step{{0, 1}, {0.003, 1}, {UpQueued * 0.99, 1}}
	run("at rest", 4, idle)

	// Raised, helped (0.4 -> 0.1), kept until the probe, raised again by
	// the one-thread queue of the probe window.
	helped := []step{{0.4, 4}, {0.1, 4}}
	for range int(Probe/win) - 2 {
		helped = append(helped, step{0.1, 4})
	}
	helped = append(helped, step{0.1, 1}, step{0.4, 4}, step{0.05, 4})
	run("helped", 4, helped)

	// Raised, not helped (0.4 -> 0.3): one thread held for Hold whatever
	// the queue, then tried again.
	notHelped := []step{{0.4, 2}, {0.3, 1}}
	for range int(Hold/win) - 1 {
		notHelped = append(notHelped, step{0.5, 1})
	}
	notHelped = append(notHelped, step{0.5, 2}, step{0.45, 1})
	run("not helped", 2, notHelped)

	run("one core", 1, []step{{0.9, 1}, {0.9, 1}})
	var p Policy
	if got := p.Next(4, Sample{Queued: 9}, time.Now()); got != 1 {
		t.Errorf("empty window: %d, want 1", got)
	}
}

// TestScalerFollowsLoad runs a Scaler against the process itself: it
// starts at one thread; with goroutines queueing for that thread it tries
// more (whether it keeps them depends on the machine's other load:
// TestPolicy covers both); idle, it ends at one; stopped, it restores Max.
func TestScalerFollowsLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few seconds")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&Scaler{Max: 2, Interval: 20 * time.Millisecond}).Run(ctx)
	}()
	waitFor := func(n int, within time.Duration) {
		t.Helper()
		for end := time.Now().Add(within); runtime.GOMAXPROCS(0) != n; {
			if time.Now().After(end) {
				t.Fatalf("GOMAXPROCS %d after %v, want %d", runtime.GOMAXPROCS(0), within, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(1, time.Second)

	// Two goroutines wanting the CPU: at one thread, one always waits.
	stop := spin(2)
	waitFor(2, 3*time.Second)
	stop()

	// Idle: one thread within a probe (or a hold) and a window.
	waitFor(1, Hold+time.Second)
	cancel()
	<-done
	if n := runtime.GOMAXPROCS(0); n != 2 {
		t.Errorf("GOMAXPROCS %d after Run returned, want Max 2", n)
	}
}

// TestMeterQueued: the meter sees goroutines waiting for a thread.
func TestMeterQueued(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	m := newMeter()
	stop := spin(4)
	time.Sleep(300 * time.Millisecond)
	stop()
	s := m.sample(time.Now())
	if s.Queued < UpQueued {
		t.Errorf("four goroutines sharing one thread: queued %.4f, want at least %.2f", s.Queued, UpQueued)
	}
	if s.CPU <= 0 || s.Wall < 300*time.Millisecond {
		t.Errorf("sample %+v: want CPU and a window of at least 300ms", s)
	}
}

// spin starts n goroutines that keep a thread busy in short pieces; the function it
// returns stops them and waits until they have.
func spin(n int) func() {
	var stop atomic.Bool
	done := make(chan struct{})
	for range n {
		go func() {
			defer func() { done <- struct{}{} }()
			for !stop.Load() {
				// A short piece of work, then back in the run queue:
				// many scheduling events, as a milter's goroutines make.
				for x := range 20000 {
					_ = x * x
				}
				runtime.Gosched()
			}
		}()
	}
	return func() {
		stop.Store(true)
		for range n {
			<-done
		}
	}
}
