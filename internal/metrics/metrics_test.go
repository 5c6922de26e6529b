package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCounterVec(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	c := r.NewCounterVec("authmilter_messages_total", "Messages judged, by action and DMARC result.", "action", "dmarc")
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { c.Inc("accept", "pass") })
	}
	wg.Wait()
	c.Inc("re\"ject\n", "fail")
	if got := testutil.ToFloat64(c.WithLabelValues("accept", "pass")); got != 10 {
		t.Errorf("accept/pass = %v, want 10", got)
	}
	want := `# HELP authmilter_messages_total Messages judged, by action and DMARC result.
# TYPE authmilter_messages_total counter
authmilter_messages_total{action="accept",dmarc="pass"} 10
authmilter_messages_total{action="re\"ject\n",dmarc="fail"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	var nilVec *CounterVec
	nilVec.Inc("accept", "pass") // counts nothing, does not panic
}

func TestHistogram(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	h := r.NewHistogram("authmilter_message_seconds", "Time from MAIL FROM to the verdict.", []float64{0.001, 0.01})
	for _, v := range []float64{0.0005, 0.005, 0.005, 1} {
		h.Observe(v)
	}
	want := `# HELP authmilter_message_seconds Time from MAIL FROM to the verdict.
# TYPE authmilter_message_seconds histogram
authmilter_message_seconds_bucket{le="0.001"} 1
authmilter_message_seconds_bucket{le="0.01"} 3
authmilter_message_seconds_bucket{le="+Inf"} 4
authmilter_message_seconds_sum 1.0105
authmilter_message_seconds_count 4
`
	if err := testutil.CollectAndCompare(h, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	var nilHist *Histogram
	nilHist.Observe(1) // records nothing, does not panic
}

func TestFuncs(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	hits := 0.0
	r.NewCounterFunc("authmilter_dns_cache_hits_total", "DNS lookups answered from the cache.", func() float64 { return hits })
	r.NewGaugeFunc("authmilter_dns_cache_entries", "Answers held in the DNS cache.", func() float64 { return 3 })
	hits = 42 // read at scrape time, not at registration
	want := `# HELP authmilter_dns_cache_entries Answers held in the DNS cache.
# TYPE authmilter_dns_cache_entries gauge
authmilter_dns_cache_entries 3
# HELP authmilter_dns_cache_hits_total DNS lookups answered from the cache.
# TYPE authmilter_dns_cache_hits_total counter
authmilter_dns_cache_hits_total 42
`
	if err := testutil.GatherAndCompare(r, strings.NewReader(want), "authmilter_dns_cache_entries", "authmilter_dns_cache_hits_total"); err != nil {
		t.Error(err)
	}
}

// TestHandler scrapes the handler as Prometheus does and finds authmilter's
// own series next to the Go runtime and process ones.
func TestHandler(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	r.NewCounterVec("authmilter_errors_total", "Errors, by kind.", "kind").Inc("seal")
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want the text format 0.0.4", ct)
	}
	body, _ := io.ReadAll(rec.Body)
	for _, s := range []string{
		"# TYPE authmilter_errors_total counter\n",
		`authmilter_errors_total{kind="seal"} 1` + "\n",
		"# TYPE go_goroutines gauge\n",
		"# TYPE process_cpu_seconds_total counter\n",
		"# TYPE process_resident_memory_bytes gauge\n",
	} {
		if !strings.Contains(string(body), s) {
			t.Errorf("scrape lacks %q:\n%s", s, body)
		}
	}
}

func TestDuplicateNamePanics(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	r.NewCounterVec("authmilter_errors_total", "Errors, by kind.", "kind")
	defer func() {
		if recover() == nil {
			t.Error("registering authmilter_errors_total twice did not panic")
		}
	}()
	r.NewCounterVec("authmilter_errors_total", "Errors, by kind.", "kind")
}
