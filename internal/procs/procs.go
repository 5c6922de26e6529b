// Package procs sizes the Go scheduler to the load: one scheduler thread
// (runtime.GOMAXPROCS 1) while the work fits in one, all of them when
// goroutines queue for it and more threads get more work done.
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
	"math"
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
	// Work is the units of work done in the window (Scaler.Work: for the
	// milter, messages answered).
	Work uint64
}

// Thresholds of Policy.
const (
	// UpQueued: at one thread, goroutines waiting this much for it
	// (Sample.Queued) in Persist windows in a row make the policy try all
	// threads. On a 2-core machine one milter session measures about
	// 0.003, two 0.04, eight 0.2-0.5.
	UpQueued = 0.1
	// Persist is the number of windows a measure is taken over: the
	// queue that raises the threads, the work rate before, and the work
	// rate after (windows of 100 ms vary by ±10 %).
	Persist = 3
	// Gain: all threads are kept only when their work rate (over Persist
	// windows, after one in which they drain what queued at one thread)
	// is at least this multiple of the one-thread rate that raised them.
	// When the cores are busy with other processes (the MTA on the same
	// machine), more threads only cost more CPU per message and do
	// little more work: one thread is then held for Hold.
	Gain = 1.2
	// Steady: the one-thread work rate that more threads must beat is
	// taken only from Persist windows whose rates agree within this
	// factor (the highest at most Steady times the lowest). While a load
	// is still rising (a burst beginning, an MTA opening its sessions)
	// its first windows are partly idle, and against them more threads
	// seem to gain what the load itself added: at eight milterload
	// sessions a ramp measured 3400 messages/s at one thread, then 4660
	// at two, where one thread, judged again at the steady load, did as
	// much for a sixth less CPU per message.
	Steady = 1.25
	// Unsteady is how many queued windows in a row, rates steady or not,
	// raise the threads anyway (with the rate of the last Persist): a
	// mix of cheap and costly messages can keep the rate moving by more
	// than Steady at a load one thread does not keep up with.
	Unsteady = 3 * Persist
	// Hold is how long one thread is kept after more did not help.
	Hold = 10 * time.Second
	// Probe is how long all threads are kept before one is tried again:
	// the queue that raises them is always the one-thread queue.
	Probe = 5 * time.Second
)

// Policy decides the thread count window by window. The zero value starts
// at one thread.
type Policy struct {
	cur     int       // 0: 1
	changed time.Time // when cur was set
	hold    time.Time // one thread until then
	// At one thread: windows in a row with a queue, and the work rates
	// of the last Persist of them (rates[(queued-1)%Persist] the latest).
	queued int
	rates  [Persist]float64
	before float64
	// At more: windows since the raise, and their work after the first.
	after  int
	gained float64
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
		p.queued, p.before, p.after, p.gained = 0, 0, 0, 0
		return n
	}
	if p.cur == 1 {
		if now.Before(p.hold) || s.Queued < UpQueued {
			p.queued = 0
			return 1
		}
		p.rates[p.queued%Persist] = rate(s)
		p.queued++
		if p.queued < Persist {
			return 1
		}
		lo, hi, sum := p.rates[0], p.rates[0], 0.0
		for _, r := range p.rates {
			lo, hi, sum = math.Min(lo, r), math.Max(hi, r), sum+r
		}
		if hi > lo*Steady && p.queued < Unsteady {
			return 1
		}
		set(max)
		p.before = sum
		return max
	}
	p.after++
	if p.after > 1 && p.after <= 1+Persist {
		p.gained += rate(s)
		// Work is known (a rate to beat) and more threads did not do
		// enough more of it.
		if p.after == 1+Persist && p.before > 0 && p.gained < p.before*Gain {
			p.hold = now.Add(Hold)
			return set(1)
		}
	}
	if now.Sub(p.changed) >= Probe {
		return set(1)
	}
	return p.cur
}

func rate(s Sample) float64 { return float64(s.Work) / s.Wall.Seconds() }

// Scaler runs a Policy every Interval and applies its answer with
// runtime.GOMAXPROCS.
type Scaler struct {
	Max      int           // threads under load; 0: runtime.GOMAXPROCS(0) at Run
	Interval time.Duration // 0: 100 ms
	Logger   *slog.Logger  // changes at debug level; nil: none
	// Work counts the work done so far (for the milter, messages
	// answered); nil: more threads are kept whenever the queue raises
	// them, until the next probe.
	Work func() uint64
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
	m := newMeter(s.Work)
	var p Policy
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			smp := m.sample(now)
			next := p.Next(max, smp, now)
			t.Reset(s.wait(interval, next, smp))
			if next == cur {
				continue
			}
			runtime.GOMAXPROCS(next)
			if s.Logger != nil {
				s.Logger.Debug("scheduler threads", "from", cur, "to", next,
					"cpu_share", float64(smp.CPU)/float64(smp.Wall), "queued", smp.Queued, "work_per_s", rate(smp))
			}
			cur = next
		}
	}
}

// IdleInterval is how often a Scaler with a Work counter looks while it
// sees none at one thread: an idle daemon is not woken ten times a second.
const IdleInterval = time.Second

// wait returns the time to the next window, after s, with next threads.
func (s *Scaler) wait(interval time.Duration, next int, smp Sample) time.Duration {
	if s.Work != nil && next == 1 && smp.Work == 0 {
		return max(interval, IdleInterval)
	}
	return interval
}

// meter takes Samples: CPU time from getrusage, queueing from
// runtime/metrics.
type meter struct {
	at     time.Time
	cpu    time.Duration
	queued float64 // seconds of runnable wait recorded so far
	work   func() uint64
	done   uint64 // work counted so far
	m      []metrics.Sample
}

const latencies = "/sched/latencies:seconds"

func newMeter(work func() uint64) *meter {
	m := &meter{m: []metrics.Sample{{Name: latencies}}, work: work}
	m.at, m.cpu, m.queued, m.done = time.Now(), cpuTime(), m.waited(), m.worked()
	return m
}

func (m *meter) worked() uint64 {
	if m.work == nil {
		return 0
	}
	return m.work()
}

func (m *meter) sample(now time.Time) Sample {
	cpu, q, done := cpuTime(), m.waited(), m.worked()
	s := Sample{Wall: now.Sub(m.at), CPU: cpu - m.cpu, Work: done - m.done}
	if s.Wall > 0 {
		s.Queued = (q - m.queued) / s.Wall.Seconds()
	}
	m.at, m.cpu, m.queued, m.done = now, cpu, q, done
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
		lo, hi := max(h.Buckets[i], 0), h.Buckets[i+1] // the first bound may be -Inf
		v := lo
		if !math.IsInf(hi, 1) {
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
