// Package procs sizes the Go scheduler to the load: one scheduler thread
// (runtime.GOMAXPROCS 1) while the work fits in one, all of them when
// goroutines queue for it.
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

// Thresholds of Decide.
const (
	// UpQueued: at one thread, goroutines waiting this much for it
	// (Sample.Queued) bring all threads back. On a 2-core machine one
	// milter session measures about 0.003, two 0.04, eight 0.5.
	UpQueued = 0.1
	// Probe is how long the thread count stays raised before one thread
	// is tried again for a window: the queue that decides is the one
	// measured with one thread.
	Probe = 2 * time.Second
)

// Decide returns the thread count for the next window: cur is the current
// one, max the count under load, since the time since the last change, s
// the window just ended.
func Decide(cur, max int, s Sample, since time.Duration) int {
	switch {
	case max <= 1 || s.Wall <= 0:
		return cur
	case cur < max && s.Queued >= UpQueued:
		return max
	case cur > 1 && since >= Probe:
		return 1
	}
	return cur
}

// Scaler runs Decide every Interval and applies its answer with
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
	changed := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			smp := m.sample(now)
			next := Decide(cur, max, smp, now.Sub(changed))
			if next == cur {
				continue
			}
			runtime.GOMAXPROCS(next)
			if s.Logger != nil {
				s.Logger.Debug("scheduler threads", "from", cur, "to", next,
					"cpu_share", float64(smp.CPU)/float64(smp.Wall), "queued", smp.Queued)
			}
			cur, changed = next, now
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
