package engine

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/metrics"
	"github.com/authmilter/authmilter/internal/testsupport/syncbuf"
	"github.com/authmilter/authmilter/verify"
)

// TestEngineIPRev: the iprev check (RFC 8601 §3) of the client, through
// the engine, in Authentication-Results, the log line and the metrics;
// never acted on.
func TestEngineIPRev(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rev := func(s string) string { return dnscache.ReverseName(netip.MustParseAddr(s)) }
	w.dns.PTR = map[string][]string{
		rev("192.0.2.10"): {"mail.example.com."},
		rev("192.0.2.11"): {"liar.example.com."},
		rev("192.0.2.12"): {"slow.example.com."},
	}
	w.dns.A = map[string][]string{"mail.example.com": {"192.0.2.10"}, "liar.example.com": {"192.0.2.99"}}
	w.dns.Fail["slow.example.com"] = dnstest.ServFail
	signed := w.sign(t, "example.com", "sel", msgText("example.com", "", "Hello.\r\n"))

	for _, tc := range []struct {
		ip     string
		result verify.Status
		ar     string // what the resinfo says, unfolded
		log    string
	}{
		{"192.0.2.10", verify.StatusPass, "iprev=pass policy.iprev=192.0.2.10 (mail.example.com);", `"iprev":"pass","iprev_name":"mail.example.com"`},
		{"192.0.2.11", verify.StatusFail, `iprev=fail reason="no PTR name resolves back to the address" policy.iprev=192.0.2.11 (liar.example.com);`, `"iprev":"fail"`},
		{"192.0.2.12", verify.StatusTemperror, `iprev=temperror reason="temporary DNS failure" policy.iprev=192.0.2.12 (slow.example.com);`, `"iprev":"temperror"`},
		{"192.0.2.13", verify.StatusPermerror, `iprev=permerror reason="no PTR record" policy.iprev=192.0.2.13;`, `"iprev":"permerror"`},
	} {
		t.Run(string(tc.result), func(t *testing.T) {
			t.Parallel()
			var buf syncbuf.Buffer
			reg := metrics.NewRegistry()
			e := w.engine(func(e *Engine) {
				e.Policy.IPRev = IPRevHeader
				e.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
				e.Metrics = NewMetrics(reg)
			})
			v, _, _ := run(t, e, env(tc.ip, "helo.example.com", "alice@example.com"), signed)
			if v.IPRev == nil || v.IPRev.Status != tc.result {
				t.Fatalf("iprev %+v, want %s", v.IPRev, tc.result)
			}
			if v.Action != ActionAccept {
				t.Errorf("action %s: iprev is never acted on", v.Action)
			}
			if ar := unfoldAR(v.AuthResults); !strings.Contains(ar, tc.ar) {
				t.Errorf("A-R lacks %s:\n%s", tc.ar, ar)
			}
			if !strings.Contains(buf.String(), tc.log) {
				t.Errorf("log line lacks %s:\n%s", tc.log, buf.String())
			}
			rec := httptest.NewRecorder()
			reg.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			body, _ := io.ReadAll(rec.Body)
			if want := `authmilter_results_total{method="iprev",result="` + string(tc.result) + `"} 1`; !strings.Contains(string(body), want) {
				t.Errorf("metrics lack %s", want)
			}
		})
	}
}

// TestIPRevStartedAtConnect: the connection's check is reused by its
// messages (one PTR lookup), and off means no lookup at all.
func TestIPRevStartedAtConnect(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ip := netip.MustParseAddr("192.0.2.10")
	w.dns.PTR = map[string][]string{dnscache.ReverseName(ip): {"mail.example.com."}}
	w.dns.A = map[string][]string{"mail.example.com": {"192.0.2.10"}}
	e := w.engine(func(e *Engine) { e.Policy.IPRev = IPRevHeader })
	c := e.StartIPRev(context.Background(), ip)
	defer c.Stop()
	msg := msgText("example.com", "", "Hi.\r\n")
	for i := 0; i < 3; i++ {
		en := env(ip.String(), "helo.example.com", "alice@example.com")
		en.IPRev = c
		if v, _, _ := run(t, e, en, msg); v.IPRev == nil || v.IPRev.Status != verify.StatusPass {
			t.Fatalf("message %d: iprev %+v", i, v.IPRev)
		}
	}
	ptrs := 0
	for _, q := range w.dns.Queries() {
		if strings.HasPrefix(q, "PTR ") {
			ptrs++
		}
	}
	if ptrs != 1 {
		t.Errorf("%d PTR lookups for three messages of one connection, want 1", ptrs)
	}
	off := w.engine()
	if off.StartIPRev(context.Background(), ip) != nil {
		t.Error("iprev off started a check")
	}
	if v, _, _ := run(t, off, env(ip.String(), "helo.example.com", "alice@example.com"), msg); v.IPRev != nil || strings.Contains(v.AuthResults, "iprev") {
		t.Errorf("iprev off: %+v %s", v.IPRev, v.AuthResults)
	}
}
