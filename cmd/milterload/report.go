package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Report is the result of a run; --json writes it as is. Times are in
// milliseconds, rates per second.
type Report struct {
	Target       string  `json:"target"`
	Concurrency  int     `json:"concurrency"`
	Reuse        int     `json:"messages_per_connection"`
	CorpusSize   int     `json:"corpus_messages"`
	Seconds      float64 `json:"seconds"`
	Messages     int     `json:"messages"` // attempted, errors included
	Errors       int     `json:"errors"`
	MessagesPerS float64 `json:"messages_per_second"` // completed messages (no error) per second
	BytesPerMsg  float64 `json:"bytes_per_message"`
	// Latency is from MAIL to the final reply, over completed messages.
	Latency Latency `json:"latency_ms"`
	// EOMWait is from the start of the content (header, body and end of
	// message, which Postfix's cleanup hands to the milters after the
	// client's final dot) to the final reply: what the SMTP client waits
	// after its final dot, over the messages that got that far.
	EOMWait Latency `json:"eom_wait_ms"`
	// GapMS is the pause between the envelope and the content (--gap).
	GapMS      float64        `json:"envelope_gap_ms"`
	Actions    map[string]int `json:"actions"`
	HeadersAdd int            `json:"header_changes"`
	FirstError string         `json:"first_error,omitempty"`
	Classes    []ClassReport  `json:"classes"`
	Milter     *MilterReport  `json:"milter,omitempty"`
	// ClientCPUPerMsg is milterload's own CPU per message: a load tool
	// that is itself the bottleneck shows here.
	ClientCPUPerMsg float64 `json:"client_cpu_ms_per_message"`
}

// Latency holds percentiles (nearest rank) in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// ClassReport is the breakdown of one message class.
type ClassReport struct {
	Class    string         `json:"class"`
	Messages int            `json:"messages"`
	Latency  Latency        `json:"latency_ms"`
	EOMWait  Latency        `json:"eom_wait_ms"`
	Actions  map[string]int `json:"actions"`
}

// MilterReport is what /proc says about the milter over the run, summed
// over its processes when --pid lists several.
type MilterReport struct {
	PID          int     `json:"pid"`            // the first of --pid
	PIDs         []int   `json:"pids,omitempty"` // all of them, when several
	ClockTicks   uint64  `json:"clock_ticks_per_second"`
	CPUms        float64 `json:"cpu_ms"`
	CPUmsPerMsg  float64 `json:"cpu_ms_per_message"`
	RSSBeforeKB  uint64  `json:"rss_kb_before"`
	RSSAfterKB   uint64  `json:"rss_kb_after"`
	RSSPeakKB    uint64  `json:"rss_kb_peak"` // VmHWM: the process's peak, not only this run's
	CPUTickError float64 `json:"cpu_ms_resolution"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func latencyOf(samples []sample) Latency { return latencies(sortedLatencies(samples, false)) }

func eomWaitOf(samples []sample) Latency { return latencies(sortedLatencies(samples, true)) }

func latencies(l []time.Duration) Latency {
	if len(l) == 0 {
		return Latency{}
	}
	var sum time.Duration
	for _, d := range l {
		sum += d
	}
	return Latency{
		P50: ms(percentile(l, 50)), P95: ms(percentile(l, 95)), P99: ms(percentile(l, 99)),
		Max: ms(l[len(l)-1]), Mean: ms(sum / time.Duration(len(l))),
	}
}

var actionNames = []string{"accept", "reject", "tempfail", "quarantine", "other", "error"}

func newActions() map[string]int {
	m := make(map[string]int, len(actionNames))
	for _, a := range actionNames {
		m[a] = 0
	}
	return m
}

// summarize builds the report of samples.
func summarize(samples []sample, wall time.Duration) *Report {
	r := &Report{Seconds: wall.Seconds(), Messages: len(samples), Actions: newActions(), Latency: latencyOf(samples), EOMWait: eomWaitOf(samples)}
	byClass := map[string][]sample{}
	bytes := 0
	for _, s := range samples {
		r.Actions[s.action]++
		r.HeadersAdd += s.headers
		if s.err != nil {
			r.Errors++
			if r.FirstError == "" {
				r.FirstError = s.err.Error()
			}
		} else {
			bytes += s.mail.size
		}
		byClass[s.mail.class] = append(byClass[s.mail.class], s)
	}
	done := len(samples) - r.Errors
	if wall > 0 {
		r.MessagesPerS = float64(done) / wall.Seconds()
	}
	if done > 0 {
		r.BytesPerMsg = float64(bytes) / float64(done)
	}
	names := make([]string, 0, len(byClass))
	for c := range byClass {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		cr := ClassReport{Class: c, Messages: len(byClass[c]), Latency: latencyOf(byClass[c]), EOMWait: eomWaitOf(byClass[c]), Actions: newActions()}
		for _, s := range byClass[c] {
			cr.Actions[s.action]++
		}
		r.Classes = append(r.Classes, cr)
	}
	return r
}

// writeText prints the report for people.
func (r *Report) writeText(w io.Writer) {
	conns := "one connection per message"
	if r.Reuse > 1 {
		conns = fmt.Sprintf("up to %d messages per connection", r.Reuse)
	}
	fmt.Fprintf(w, "target      %s, %d sessions, %s, corpus of %d messages\n", r.Target, r.Concurrency, conns, r.CorpusSize)
	fmt.Fprintf(w, "messages    %d in %.2f s: %.1f messages/s (%d errors), %.0f bytes/message\n", r.Messages, r.Seconds, r.MessagesPerS, r.Errors, r.BytesPerMsg)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error %s\n", r.FirstError)
	}
	l := r.Latency
	fmt.Fprintf(w, "latency     p50 %.3f ms  p95 %.3f ms  p99 %.3f ms  max %.3f ms  mean %.3f ms (MAIL to final reply)\n", l.P50, l.P95, l.P99, l.Max, l.Mean)
	e := r.EOMWait
	fmt.Fprintf(w, "after EOM   p50 %.3f ms  p95 %.3f ms  p99 %.3f ms  max %.3f ms  mean %.3f ms (after the final dot: content to final reply; envelope gap %.0f ms)\n", e.P50, e.P95, e.P99, e.Max, e.Mean, r.GapMS)
	fmt.Fprintf(w, "actions     %s  (header changes %d)\n", formatActions(r.Actions), r.HeadersAdd)
	if m := r.Milter; m != nil {
		who := fmt.Sprintf("pid %d", m.PID)
		if len(m.PIDs) > 1 {
			who = fmt.Sprintf("pids %s (summed)", strings.Trim(strings.Join(strings.Fields(fmt.Sprint(m.PIDs)), ","), "[]"))
		}
		fmt.Fprintf(w, "milter      %s: CPU %.3f ms/message (%.0f ms in all, resolution %.0f ms); RSS %.1f MiB before, %.1f MiB after, peak %.1f MiB\n",
			who, m.CPUmsPerMsg, m.CPUms, m.CPUTickError, float64(m.RSSBeforeKB)/1024, float64(m.RSSAfterKB)/1024, float64(m.RSSPeakKB)/1024)
	}
	fmt.Fprintf(w, "client      CPU %.3f ms/message\n", r.ClientCPUPerMsg)
	fmt.Fprintf(w, "%-18s %8s %9s %9s %9s %9s %9s  %s\n", "class", "messages", "p50 ms", "p95 ms", "p99 ms", "eom p50", "eom p99", "actions")
	for _, c := range r.Classes {
		fmt.Fprintf(w, "%-18s %8d %9.3f %9.3f %9.3f %9.3f %9.3f  %s\n", c.Class, c.Messages, c.Latency.P50, c.Latency.P95, c.Latency.P99,
			c.EOMWait.P50, c.EOMWait.P99, formatActions(c.Actions))
	}
}

func formatActions(a map[string]int) string {
	var parts []string
	for _, n := range actionNames {
		if a[n] > 0 || n != "error" {
			parts = append(parts, fmt.Sprintf("%s %d", n, a[n]))
		}
	}
	return strings.Join(parts, "  ")
}
