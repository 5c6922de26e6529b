// Package metrics is a small Prometheus text-format exporter (exposition
// format 0.0.4): labelled counters and histograms, enough for authmilter's
// /metrics without a dependency tree.
package metrics

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry holds metrics in registration order.
type Registry struct {
	mu      sync.Mutex
	metrics []metric
}

type metric interface {
	write(w io.Writer)
}

// CounterVec is a counter with labels.
type CounterVec struct {
	name, help string
	labels     []string
	mu         sync.Mutex
	values     map[string]*atomic.Uint64 // key: label values joined by \xff
}

// NewCounterVec registers a counter family.
func (r *Registry) NewCounterVec(name, help string, labels ...string) *CounterVec {
	c := &CounterVec{name: name, help: help, labels: labels, values: map[string]*atomic.Uint64{}}
	r.add(c)
	return c
}

// GaugeFunc is a gauge read at scrape time.
type GaugeFunc struct {
	name, help string
	f          func() float64
}

// NewGaugeFunc registers a gauge whose value f returns.
func (r *Registry) NewGaugeFunc(name, help string, f func() float64) {
	r.add(&GaugeFunc{name: name, help: help, f: f})
}

// CounterFunc is a counter read at scrape time (for counts kept elsewhere).
type CounterFunc struct {
	name, help string
	f          func() float64
}

// NewCounterFunc registers a counter whose value f returns.
func (r *Registry) NewCounterFunc(name, help string, f func() float64) {
	r.add(&CounterFunc{name: name, help: help, f: f})
}

func (r *Registry) add(m metric) {
	r.mu.Lock()
	r.metrics = append(r.metrics, m)
	r.mu.Unlock()
}

// Inc adds one to the counter with the given label values (in the order the
// labels were declared).
func (c *CounterVec) Inc(values ...string) { c.Add(1, values...) }

// Add adds n.
func (c *CounterVec) Add(n uint64, values ...string) {
	if c == nil {
		return
	}
	key := strings.Join(values, "\xff")
	c.mu.Lock()
	v, ok := c.values[key]
	if !ok {
		v = new(atomic.Uint64)
		c.values[key] = v
	}
	c.mu.Unlock()
	v.Add(n)
}

// Value returns the current count for the label values.
func (c *CounterVec) Value(values ...string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.values[strings.Join(values, "\xff")]; ok {
		return v.Load()
	}
	return 0
}

func (c *CounterVec) write(w io.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", c.name, escapeHelp(c.help), c.name)
	c.mu.Lock()
	keys := make([]string, 0, len(c.values))
	for k := range c.values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s%s %d\n", c.name, labelString(c.labels, strings.Split(k, "\xff")), c.values[k].Load())
	}
	c.mu.Unlock()
}

func (g *GaugeFunc) write(w io.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", g.name, escapeHelp(g.help), g.name, g.name, formatFloat(g.f()))
}

func (g *CounterFunc) write(w io.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %s\n", g.name, escapeHelp(g.help), g.name, g.name, formatFloat(g.f()))
}

// Histogram observes values into fixed buckets.
type Histogram struct {
	name, help string
	bounds     []float64
	mu         sync.Mutex
	counts     []uint64 // per bucket, not cumulative; last = +Inf
	sum        float64
	n          uint64
}

// NewHistogram registers a histogram with the given upper bounds (sorted).
func (r *Registry) NewHistogram(name, help string, bounds []float64) *Histogram {
	h := &Histogram{name: name, help: help, bounds: bounds, counts: make([]uint64, len(bounds)+1)}
	r.add(h)
	return h
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	if h == nil {
		return
	}
	i := sort.SearchFloat64s(h.bounds, v)
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.n++
	h.mu.Unlock()
}

func (h *Histogram) write(w io.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", h.name, escapeHelp(h.help), h.name)
	h.mu.Lock()
	defer h.mu.Unlock()
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		fmt.Fprintf(w, "%s_bucket{le=\"%s\"} %d\n", h.name, formatFloat(b), cum)
	}
	cum += h.counts[len(h.bounds)]
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", h.name, cum, h.name, formatFloat(h.sum), h.name, h.n)
}

// Write writes all metrics in the text exposition format.
func (r *Registry) Write(w io.Writer) {
	r.mu.Lock()
	ms := append([]metric(nil), r.metrics...)
	r.mu.Unlock()
	for _, m := range ms {
		m.write(w)
	}
}

// Handler serves the registry at /metrics.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		r.Write(w)
	})
}

func labelString(names, values []string) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		v := ""
		if i < len(values) {
			v = values[i]
		}
		b.WriteString(n)
		b.WriteString(`="`)
		b.WriteString(escapeLabel(v))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
