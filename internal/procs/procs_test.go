package procs

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	win := 100 * time.Millisecond
	for _, c := range []struct {
		name     string
		cur, max int
		queued   float64
		since    time.Duration
		want     int
	}{
		{"one thread, no queue", 1, 4, 0.003, time.Hour, 1},
		{"one thread, just under", 1, 4, UpQueued * 0.99, 0, 1},
		{"one thread, queue", 1, 4, UpQueued, 0, 4},
		{"one thread, long queue", 1, 4, 0.5, 0, 4},
		{"raised, before the probe", 4, 4, 0, Probe - time.Millisecond, 4},
		{"raised, queue or not, probe due", 4, 4, 0.5, Probe, 1},
		{"a single core", 1, 1, 0.9, time.Hour, 1},
		{"fixed at one", 1, 1, 0, time.Hour, 1},
	} {
		s := Sample{Wall: win, Queued: c.queued}
		if got := Decide(c.cur, c.max, s, c.since); got != c.want {
			t.Errorf("%s: Decide(%d, %d, queued %.3f, %v) = %d, want %d", c.name, c.cur, c.max, c.queued, c.since, got, c.want)
		}
	}
	if got := Decide(1, 4, Sample{Queued: 9}, 0); got != 1 {
		t.Errorf("empty window: %d, want 1 (unchanged)", got)
	}
}

// TestScalerFollowsLoad runs a Scaler against the process itself: it
// starts at one thread; with goroutines queueing for that thread it raises
// the count; idle again, it drops to one at the next probe; when stopped
// it restores Max.
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
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(1, time.Second)

	// Eight goroutines wanting the CPU: at one thread they queue.
	stop := spin(8)
	waitFor(2, 3*time.Second)
	stop()

	// Idle again: back to one thread at the next probe.
	waitFor(1, Probe+2*time.Second)
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

// spin starts n goroutines that keep a thread busy; the function it
// returns stops them and waits until they have.
func spin(n int) func() {
	var stop atomic.Bool
	done := make(chan struct{})
	for range n {
		go func() {
			defer func() { done <- struct{}{} }()
			for x := 0; !stop.Load(); x++ {
				_ = x * x
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
