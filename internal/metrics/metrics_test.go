package metrics

import (
	"strings"
	"sync"
	"testing"
)

func TestExposition(t *testing.T) {
	t.Parallel()
	var r Registry
	c := r.NewCounterVec("authmilter_messages_total", "Messages judged.", "action")
	h := r.NewHistogram("authmilter_latency_seconds", "Latency.", []float64{0.001, 0.01})
	r.NewGaugeFunc("authmilter_sessions", "Open sessions.", func() float64 { return 3 })
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.Inc("accept"); h.Observe(0.005) }()
	}
	wg.Wait()
	c.Inc("re\"ject\n")
	h.Observe(0.0005)
	h.Observe(1)
	var b strings.Builder
	r.Write(&b)
	got := b.String()
	for _, want := range []string{
		`authmilter_messages_total{action="accept"} 10`,
		`authmilter_messages_total{action="re\"ject\n"} 1`,
		`authmilter_latency_seconds_bucket{le="0.001"} 1`,
		`authmilter_latency_seconds_bucket{le="0.01"} 11`,
		`authmilter_latency_seconds_bucket{le="+Inf"} 12`,
		`authmilter_latency_seconds_count 12`,
		"# TYPE authmilter_sessions gauge\nauthmilter_sessions 3",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
}
