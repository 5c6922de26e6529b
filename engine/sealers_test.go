package engine

import (
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/internal/metrics"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/dmarc"
)

// TestSealerStatsThroughEngine: a list that saw dmarc=pass, sealed, and
// broke the author's signature; the message fails DMARC here. Its sealer
// is counted as one trusting would have helped; an untouched message
// from the same list is counted without.
func TestSealerStatsThroughEngine(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	signed := w.sign(t, "example.com", "sel", msgText("example.com", "", "Hello.\r\n"))
	changed := strings.Replace(signed, "Hello.\r\n", "Hello.\r\n-- \r\nlist footer\r\n", 1)
	broken := w.seal(t, changed, "spf=pass smtp.mailfrom=alice@example.com; dmarc=pass header.from=example.com")
	intact := w.seal(t, signed, "dkim=pass header.d=example.com; dmarc=pass header.from=example.com")
	reg := metrics.NewRegistry()
	stats := NewSealerStats(reg, 10, func() time.Time { return time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC) })
	e := w.engine(func(e *Engine) { e.Sealers = stats })
	from := env("198.51.100.7", "mail.forwarder.test", "list@mail.forwarder.test")
	for _, msg := range []string{broken, broken, intact} {
		run(t, e, from, msg)
	}
	got := stats.Snapshot()
	want := SealerCounts{Domain: "forwarder.test", Messages: 3, ChainPass: 3, DMARCFail: 2, UpstreamDMARCPass: 3, WouldOverride: 2,
		FirstSeen: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC), LastSeen: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	rec := httptest.NewRecorder()
	reg.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, s := range []string{
		`authmilter_arc_sealer_messages_total{outcome="messages",sealer="forwarder.test"} 3`,
		`authmilter_arc_sealer_messages_total{outcome="would_override",sealer="forwarder.test"} 2`,
	} {
		if !strings.Contains(string(body), s) {
			t.Errorf("metrics lack %s", s)
		}
	}
}

func verdictWith(res verify.Status, dres verify.Status, sets ...arc.Set) *Verdict {
	return &Verdict{ARC: &arc.Result{Status: res, Instances: len(sets), Sets: sets}, DMARC: &dmarc.Result{Status: dres}}
}

// TestSealerStatsBound: the table never holds more than its bound, and a
// full table gives way at the sealer with the fewest validated chains
// seen longest ago, so made-up domains of forged seals cannot push out
// the sealers that validate.
func TestSealerStatsBound(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	reg := metrics.NewRegistry()
	s := NewSealerStats(reg, 2, func() time.Time { now = now.Add(time.Second); return now })
	good := arc.Set{Domain: "Lists.Example.org.", AAR: "lists.example.org; dmarc=pass header.from=example.com"}
	s.Record(verdictWith(verify.StatusPass, verify.StatusFail, good))
	for _, junk := range []string{"junk1.example", "junk2.example", "junk3.example"} {
		s.Record(verdictWith(verify.StatusFail, verify.StatusFail, arc.Set{Domain: junk, AAR: "x; dmarc=pass"}))
	}
	got := s.Snapshot()
	if len(got) != 2 || got[0].Domain != "lists.example.org" || got[0].WouldOverride != 1 || got[1].Domain != "junk3.example" {
		t.Fatalf("table %+v", got)
	}
	// A failed chain's claim of dmarc=pass is not evidence.
	if got[1].UpstreamDMARCPass != 0 || got[1].Messages != 1 || got[1].DMARCFail != 1 {
		t.Errorf("junk counted %+v", got[1])
	}
	rec := httptest.NewRecorder()
	reg.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if body := rec.Body.String(); strings.Contains(body, "junk1.example") || !strings.Contains(body, "junk3.example") {
		t.Errorf("evicted sealers stay in the metrics:\n%s", body)
	}
	// Internal mail and messages without a chain count nothing.
	s.Record(&Verdict{Internal: true, ARC: &arc.Result{Status: verify.StatusPass, Sets: []arc.Set{{Domain: "internal.example"}}}})
	s.Record(&Verdict{ARC: &arc.Result{Status: verify.StatusNone}})
	var nilStats *SealerStats
	nilStats.Record(verdictWith(verify.StatusPass, verify.StatusFail, good))
	if len(s.Snapshot()) != 2 {
		t.Errorf("table %+v", s.Snapshot())
	}
}

// TestSealerStatsFile: Save and LoadSealers round-trip, Restore continues
// the counts, and a file that is not ours is refused.
func TestSealerStatsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "sealers.json")
	s := NewSealerStats(nil, 10, nil)
	good := arc.Set{Domain: "lists.example.org", AAR: "lists.example.org; dmarc=pass header.from=example.com"}
	s.Record(verdictWith(verify.StatusPass, verify.StatusFail, good, arc.Set{Domain: "mx.example.net", AAR: "mx.example.net; spf=pass"}))
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("state file %v %v", fi, err)
	}
	list, written, err := LoadSealers(path)
	if err != nil || len(list) != 2 || written.IsZero() || list[0].Domain != "lists.example.org" || list[0].WouldOverride != 1 || list[1].UpstreamDMARCPass != 0 {
		t.Fatalf("LoadSealers = %+v %v %v", list, written, err)
	}
	again := NewSealerStats(nil, 10, nil)
	again.Restore(list)
	again.Record(verdictWith(verify.StatusPass, verify.StatusFail, good))
	if got := again.Snapshot(); got[0].Messages != 2 || got[0].WouldOverride != 2 {
		t.Errorf("restored counts %+v", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	bad := filepath.Join(dir, "bad.json")
	for _, text := range []string{"not json", `{"version": 7, "sealers": []}`} {
		os.WriteFile(bad, []byte(text), 0o600)
		if _, _, err := LoadSealers(bad); !errors.Is(err, ErrSealerFile) {
			t.Errorf("LoadSealers(%q) = %v, want ErrSealerFile", text, err)
		}
	}
	if err := s.Save(filepath.Join(dir, "missing", "sealers.json")); err == nil {
		t.Error("Save into a missing directory succeeded")
	}
}
