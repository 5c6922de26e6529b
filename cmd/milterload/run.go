package main

import (
	"context"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// runConfig is what one load run does.
type runConfig struct {
	network, addr string
	concurrency   int
	count         int           // messages to send; 0: until duration
	duration      time.Duration // always bounds the run
	reuse         int           // messages per connection (≥ 1)
	timeout       time.Duration // per protocol read or write
	received      bool          // prepend Postfix's Received field
	mta           string        // the MTA's name ({j}, the Received field)
	// gap is the pause between the envelope (connect, HELO, MAIL, RCPT,
	// DATA, written as Postfix writes them) and the content (header, body
	// and end of message, written at once): the client's transfer time.
	gap time.Duration
}

// sample is the record of one message.
type sample struct {
	mail    *mail
	latency time.Duration
	eomWait time.Duration // start of the content → final reply (the wait after the final dot); 0: not reached
	action  string        // accept, reject, tempfail, quarantine, discard, other, error
	headers int
	err     error
}

// run replays corpus against the milter and returns one sample per message
// attempted, and the wall time of the run.
func run(ctx context.Context, cfg runConfig, corpus []*mail) ([]sample, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	var next atomic.Uint64
	var mu sync.Mutex
	var all []sample
	var wg sync.WaitGroup
	start := time.Now()
	for range cfg.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := worker(ctx, cfg, corpus, &next)
			mu.Lock()
			all = append(all, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, time.Since(start)
}

func worker(ctx context.Context, cfg runConfig, corpus []*mail, next *atomic.Uint64) []sample {
	var out []sample
	// No keep-alive: its probes start after 15 s idle, which a milter
	// connection here never is, and its socket options cost four system
	// calls per connection.
	d := &net.Dialer{Timeout: cfg.timeout, KeepAlive: -1}
	c := &conn{timeout: cfg.timeout, gap: cfg.gap}
	var (
		connDone    bool    // the milter gave a final answer at connect or HELO:
		connOutcome outcome // this one, for every message of the connection
		used        int
	)
	closeConn := func() {
		if c.open() {
			c.quit()
		}
		connDone, used = false, 0
	}
	defer closeConn()
	for ctx.Err() == nil {
		i := next.Add(1) - 1
		if cfg.count > 0 && i >= uint64(cfg.count) {
			break
		}
		m := corpus[i%uint64(len(corpus))]
		s := sample{mail: m}
		start := time.Now()
		if !c.open() {
			err := c.dial(d, cfg.network, cfg.addr)
			if err == nil {
				connDone, connOutcome, err = c.connect(m, cfg.mta)
				if err != nil {
					c.close()
					connDone = false
				}
			}
			if err != nil {
				s.action, s.err, s.latency = "error", err, time.Since(start)
				out = append(out, s)
				continue
			}
		}
		var o outcome
		var err error
		if connDone {
			o = connOutcome
		} else {
			o, s.latency, s.eomWait, err = c.transaction(m, queueID(i), cfg.mta, cfg.received)
		}
		s.action, s.headers = classify(o.action), o.headers
		if err != nil {
			s.action, s.err = "error", err
		}
		out = append(out, s)
		used++
		if err != nil {
			c.close()
			connDone, used = false, 0
		} else if used >= cfg.reuse {
			closeConn()
		}
	}
	return out
}

// classify maps an answer to the reported action mix.
func classify(a string) string {
	switch a {
	case "accept", "reject", "tempfail", "quarantine":
		return a
	}
	return "other" // discard, skip at end of message, 2xx/3xx reply codes
}

// percentile returns the p-th percentile (0–100) of sorted durations, by
// the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

func sortedLatencies(samples []sample, eom bool) []time.Duration {
	var l []time.Duration
	for _, s := range samples {
		switch {
		case s.err != nil:
		case !eom:
			l = append(l, s.latency)
		case s.eomWait > 0:
			l = append(l, s.eomWait)
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	return l
}
