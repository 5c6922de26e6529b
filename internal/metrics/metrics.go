// Package metrics is authmilter's Prometheus registry, built on
// github.com/prometheus/client_golang. A Registry is private to one daemon
// (never prometheus.DefaultRegisterer) and always carries the Go runtime
// (go_*) and process (process_*) series; the Registry's New* methods register
// authmilter's own metrics in one call each.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry holds one daemon's metrics. Its embedded *prometheus.Registry
// takes any other collector and is the Gatherer that tests compare against.
type Registry struct {
	*prometheus.Registry
}

// NewRegistry returns a registry holding the Go runtime and process
// collectors.
func NewRegistry() *Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return &Registry{r}
}

// Handler serves the registry in the Prometheus exposition formats.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.Registry, promhttp.HandlerOpts{})
}

// CounterVec is a counter family with labels.
type CounterVec struct {
	*prometheus.CounterVec
}

// NewCounterVec registers a counter family. It panics if name, help or the
// labels are invalid or name is taken: both are programming errors.
func (r *Registry) NewCounterVec(name, help string, labels ...string) *CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	r.MustRegister(c)
	return &CounterVec{c}
}

// Inc adds one to the counter with the given label values, in the order the
// labels were declared. A nil CounterVec counts nothing.
func (c *CounterVec) Inc(values ...string) {
	if c == nil {
		return
	}
	c.WithLabelValues(values...).Inc()
}

// Histogram observes values into fixed buckets.
type Histogram struct {
	prometheus.Histogram
}

// NewHistogram registers a histogram with the given upper bounds (sorted,
// without +Inf).
func (r *Registry) NewHistogram(name, help string, bounds []float64) *Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: bounds})
	r.MustRegister(h)
	return &Histogram{h}
}

// Observe records v. A nil Histogram records nothing.
func (h *Histogram) Observe(v float64) {
	if h == nil {
		return
	}
	h.Histogram.Observe(v)
}

// NewGaugeFunc registers a gauge whose value f returns at scrape time.
func (r *Registry) NewGaugeFunc(name, help string, f func() float64) {
	r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// NewCounterFunc registers a counter whose value f returns at scrape time,
// for counts kept elsewhere. A value lower than the last scrape's reads as a
// counter reset, as after a restart.
func (r *Registry) NewCounterFunc(name, help string, f func() float64) {
	r.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}
