// Package procs sizes the Go scheduler to the load: one scheduler thread
// (runtime.GOMAXPROCS 1) while the work fits in one, all of them when
// goroutines queue for it and more threads shorten the queue.
//
// Why: with idle scheduler threads, every goroutine that becomes runnable
// (a milter packet arriving, a new connection) wakes another thread to run
// it, and on a virtual machine each such wake-up is a context switch that
// costs more than the work it hands over. At a light load one thread does
// the same work for about three quarters of the CPU time and with lower
// latency (docs/performance.md); under load, signature checks and sealing
// need every core.
package procs

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"syscall"
	"time"
)

// Sample is what the process did over one window.
type Sample struct {
	Wall time.Duration // length of the window
	CPU  time.Duration // CPU time the process used (user and system; logged)
	// Queued is the runnable-goroutine wait time recorded in the window
	// (the runtime's /sched/latencies:seconds histogram, which samples
	// scheduling events), divided by Wall: a relative measure of how long
	// goroutines waited for a thread.
	Queued float64
}

// Thresholds of Policy.
const (
	// UpQueued: at one thread, goroutines waiting this much for it
	// (Sample.Queued) make the policy try all threads. On a 2-core machine
	// one milter session measures about 0.003, two 0.04, eight 0.2-0.5.
	UpQueued = 0.1
	// Helped: all threads are kept only when, in their first window, the
	// queue is at most this share of the one-thread queue that raised
	// them. When the cores are busy with other processes (the MTA on the
	// same machine), more threads only cost more CPU per message: the
	// queue stays and one thread is held for Hold.
	Helped = 0.5
	// Hold is how long one thread is kept after more did not help.
	Hold = 10 * time.Second
	// Probe is how long all threads are kept before one is tried again
	// for a window: the queue that raises them is always the one-thread
	// queue.
	Probe = 2 * time.Second
)

// Policy decides the thread count window by window. The zero value starts
// at one thread.
type Policy struct {
	cur     int       // 0: 1
	changed time.Time // when cur was set
	queued  float64   // the one-thread queue that raised cur
	tried   bool      // cur was raised and its first window is not judged yet
	hold    time.Time // one thread until then
}

// Next returns the thread count for the window after s, which ended at
// now; max is the count under load.
func (p *Policy) Next(max int, s Sample, now time.Time) int {
	if p.cur == 0 {
		p.cur, p.changed = 1, now
	}
	if max <= 1 || s.Wall <= 0 {
		return p.cur
	}
	set := func(n int) int {
		p.cur, p.changed = n, now
		return n
	}
	switch {
	case p.cur == 1:
		if now.Before(p.hold) || s.Queued < UpQueued {
			return 1
		}
		p.queued, p.tried = s.Queued, true
		return set(max)
	case p.tried:
		p.tried = false
		if s.Queued > p.queued*Helped {
			p.hold = now.Add(Hold)
			return set(1)
		}
	case now.Sub(p.changed) >= Probe:
		return set(1)
	}
	return p.cur
}

// Scaler runs a Policy every Interval and applies its answer with
// runtime.GOMAXPROCS.
type Scaler struct {
	Max      int           // threads under load; 0: runtime.GOMAXPROCS(0) at Run
	Interval time.Duration // 0: 100 ms
	Logger   *slog.Logger  // changes at debug level; nil: none
}

// Run sets GOMAXPROCS to 1 and adjusts it until ctx ends, then restores
// Max.
func (s *Scaler) Run(ctx context.Context) {
	max := s.Max
	if max <= 0 {
		max = runtime.GOMAXPROCS(0)
	}
	interval := s.Interval
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	if max <= 1 {
		return
	}
	defer runtime.GOMAXPROCS(max)
	// A daemon starts idle: one thread, until work queues.
	cur := 1
	runtime.GOMAXPROCS(cur)
	m := newMeter()
	var p Policy
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			smp := m.sample(now)
			next := p.Next(max, smp, now)
			if next == cur {
				continue
			}
			runtime.GOMAXPROCS(next)
			if s.Logger != nil {
				s.Logger.Debug("scheduler threads", "from", cur, "to", next,
					"cpu_share", float64(smp.CPU)/float64(smp.Wall), "queued", smp.Queued)
			}
			cur = next
		}
	}
}

// meter takes Samples: CPU time from getrusage, queueing from
// runtime/metrics.
type meter struct {
	at     time.Time
	cpu    time.Duration
	queued float64 // seconds of runnable wait recorded so far
	m      []metrics.Sample
}

const latencies = "/sched/latencies:seconds"

func newMeter() *meter {
	m := &meter{m: []metrics.Sample{{Name: latencies}}}
	m.at, m.cpu, m.queued = time.Now(), cpuTime(), m.waited()
	return m
}

func (m *meter) sample(now time.Time) Sample {
	cpu, q := cpuTime(), m.waited()
	s := Sample{Wall: now.Sub(m.at), CPU: cpu - m.cpu}
	if s.Wall > 0 {
		s.Queued = (q - m.queued) / s.Wall.Seconds()
	}
	m.at, m.cpu, m.queued = now, cpu, q
	return s
}

// waited sums the latency histogram: each bucket's count at its midpoint
// (the lower bound for an open-ended last bucket).
func (m *meter) waited() float64 {
	metrics.Read(m.m)
	if m.m[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	h := m.m[0].Value.Float64Histogram()
	sum := 0.0
	for i, n := range h.Counts {
		if n == 0 {
			continue
		}
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		switch {
		case lo < 0 || lo != lo:
			lo = 0
		}
		v := lo
		if hi-lo < 1e300 && hi > lo { // finite upper bound
			v = (lo + hi) / 2
		}
		sum += float64(n) * v
	}
	return sum
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
