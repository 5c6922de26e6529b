package procs

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestPolicy walks the policy through windows of given queues and work:
// one thread at rest, all when the queue is long, kept while they get more
// work done with a one-thread probe every Probe, given up (and one thread
// held for Hold) when they do not; judged against a steady one-thread rate.
func TestPolicy(t *testing.T) {
	t.Parallel()
	const win = 100 * time.Millisecond
	type step struct {
		queued float64
		work   uint64
		want   int
	}
	run := func(name string, max int, steps []step) {
		t.Helper()
		var p Policy
		now := time.Unix(1e9, 0)
		for i, st := range steps {
			now = now.Add(win)
			if got := p.Next(max, Sample{Wall: win, Queued: st.queued, Work: st.work}, now); got != st.want {
				t.Errorf("%s: window %d (queued %.3f, work %d): %d threads, want %d", name, i, st.queued, st.work, got, st.want)
				return
			}
		}
	}
	repeat := func(st step, n int) []step {
		out := make([]step, n)
		for i := range out {
			out[i] = st
		}
		return out
	}
	run("at rest", 4, []step{{0, 0, 1}, {0.003, 300, 1}, {UpQueued * 0.99, 300, 1}})
	// Persist windows in a row with a queue raise the count; a quiet
	// one in between starts the count again.
	q := step{0.4, 300, 1}
	run("a queue that persists", 4, []step{q, q, {0.05, 300, 1}, q, q, {0.4, 300, 4}})
	raise := func(max int) []step { return []step{q, q, {0.4, 300, max}} }
	// A load still rising: its rate is not the one to beat until Persist
	// windows agree within Steady.
	run("a rising load", 4, []step{{0.4, 150, 1}, {0.4, 200, 1}, {0.4, 300, 1}, {0.4, 300, 1}, {0.4, 300, 4}})
	// The rate judged is the steady one: 300 -> 330 is under Gain.
	ramp := []step{{0.4, 100, 1}, {0.4, 200, 1}, {0.4, 300, 1}, {0.4, 300, 1}, {0.4, 300, 2}}
	run("a rising load, not helped", 2, append(ramp, step{0.4, 500, 2}, step{0.4, 330, 2}, step{0.4, 330, 2}, step{0.4, 330, 1}))
	// A rate that never settles still raises the count, after Unsteady
	// queued windows.
	var unsteady []step
	for i := 1; i < Unsteady; i++ {
		unsteady = append(unsteady, step{0.4, uint64(200 + 200*(i%2)), 1})
	}
	run("a queue with an unsteady rate", 2, append(unsteady, step{0.4, 200, 2}))

	// 300 messages a window at one thread; with all of them 900 while
	// the backlog drains, then 600: kept until the probe, when the
	// one-thread queue raises them again.
	helped := append(raise(4), step{0.4, 900, 4}, step{0.3, 600, 4}, step{0.3, 600, 4}, step{0.3, 600, 4})
	helped = append(helped, repeat(step{0.3, 600, 4}, int(Probe/win)-5)...)
	helped = append(helped, step{0.3, 600, 1})
	helped = append(helped, raise(4)...)
	run("helped", 4, helped)

	// 300 -> 320 (under Gain) once the backlog is done: one thread held
	// for Hold whatever the queue, then tried again.
	notHelped := append(raise(2), step{0.4, 500, 2}, step{0.4, 320, 2}, step{0.4, 320, 2}, step{0.4, 320, 1})
	notHelped = append(notHelped, repeat(step{0.5, 300, 1}, int(Hold/win)+Persist-2)...)
	notHelped = append(notHelped, step{0.5, 300, 2})
	run("not helped", 2, notHelped)

	// No work counted: nothing to judge by; kept until the probe.
	unknown := []step{{0.4, 0, 1}, {0.4, 0, 1}, {0.4, 0, 2}}
	unknown = append(unknown, repeat(step{0.4, 0, 2}, int(Probe/win)-1)...)
	unknown = append(unknown, step{0.4, 0, 1})
	run("work unknown", 2, unknown)

	run("one core", 1, []step{{0.9, 300, 1}, {0.9, 300, 1}})
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
	waitFor(1, max(Probe, Hold)+time.Second)
	cancel()
	<-done
	if n := runtime.GOMAXPROCS(0); n != 2 {
		t.Errorf("GOMAXPROCS %d after Run returned, want Max 2", n)
	}
}

// TestMeterQueued: the meter sees goroutines waiting for a thread.
func TestMeterQueued(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var work atomic.Uint64
	m := newMeter(work.Load)
	work.Add(7)
	stop := spin(4)
	time.Sleep(300 * time.Millisecond)
	stop()
	s := m.sample(time.Now())
	if s.Queued < UpQueued {
		t.Errorf("four goroutines sharing one thread: queued %.4f, want at least %.2f", s.Queued, UpQueued)
	}
	if s.CPU <= 0 || s.Wall < 300*time.Millisecond || s.Work != 7 {
		t.Errorf("sample %+v: want CPU, a window of at least 300ms and 7 units of work", s)
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

// TestScalerWaitIdle: with a Work counter, a window without work at one
// thread makes the next one IdleInterval away; with work, or more threads,
// or no counter, the next is Interval away.
func TestScalerWaitIdle(t *testing.T) {
	t.Parallel()
	const iv = 100 * time.Millisecond
	counted := &Scaler{Work: func() uint64 { return 0 }}
	for _, c := range []struct {
		s    *Scaler
		next int
		work uint64
		want time.Duration
	}{
		{counted, 1, 0, IdleInterval},
		{counted, 1, 5, iv},
		{counted, 2, 0, iv},
		{&Scaler{}, 1, 0, iv},
	} {
		if got := c.s.wait(iv, c.next, Sample{Wall: iv, Work: c.work}); got != c.want {
			t.Errorf("counter %v, %d threads, work %d: wait %v, want %v", c.s.Work != nil, c.next, c.work, got, c.want)
		}
	}
}
