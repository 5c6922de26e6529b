package dmarcreport

import (
	"encoding/base64"
	"io"
	"strings"
	"testing"
	"time"
)

func base64Reader(r io.Reader) io.Reader { return base64.NewDecoder(base64.StdEncoding, r) }

func TestNormalizeAndKey(t *testing.T) {
	mk := func(ip, from string, dkim ...DKIMResult) Record {
		return Record{
			Policy: Policy{Domain: "Example.COM.", P: "reject"},
			Row: Row{SourceIP: ip, Disposition: DispositionReject, DKIM: AlignedFail, SPF: AlignedFail,
				HeaderFrom: from, EnvelopeFrom: "Bounce.Example.NET", DKIMResults: dkim},
		}
	}
	a := mk("::ffff:192.0.2.1", "EXAMPLE.com", DKIMResult{"other.example", "s", "fail", ""}, DKIMResult{"example.com", "s", "pass", ""})
	b := mk("192.0.2.1", "example.com.", DKIMResult{"other.example", "s", "fail", ""}, DKIMResult{"Example.com", "s", "pass", ""})
	for _, r := range []*Record{&a, &b} {
		if err := r.Normalize(); err != nil {
			t.Fatal(err)
		}
	}
	if a.Row.Key() != b.Row.Key() {
		t.Errorf("same facts, different keys:\n%s\n%s", a.Row.Key(), b.Row.Key())
	}
	if a.Policy.Domain != "example.com" || a.Row.SourceIP != "192.0.2.1" {
		t.Errorf("normalised to %q %q", a.Policy.Domain, a.Row.SourceIP)
	}
	// RFC 9990 §2.1.3: a passing signature of the From domain comes first.
	if a.Row.DKIMResults[0].Domain != "example.com" {
		t.Errorf("DKIM order %v", a.Row.DKIMResults)
	}
	c := mk("192.0.2.2", "example.com")
	c.Normalize()
	if c.Row.Key() == a.Row.Key() {
		t.Error("different source IPs share a key")
	}
	back, err := ParseRow(a.Row.Key())
	if err != nil || back.Key() != a.Row.Key() {
		t.Errorf("ParseRow(Key) = %v, %v", back, err)
	}
}

func TestNormalizeCaps(t *testing.T) {
	r := Record{Policy: Policy{Domain: "example.com", P: "none"}, Row: Row{SourceIP: "192.0.2.1", HeaderFrom: "example.com"}}
	for range 150 {
		r.Row.DKIMResults = append(r.Row.DKIMResults, DKIMResult{"example.net", "s", "fail", ""})
	}
	if err := r.Normalize(); err != nil {
		t.Fatal(err)
	}
	if len(r.Row.DKIMResults) != MaxDKIMResults {
		t.Errorf("%d DKIM results kept, want %d", len(r.Row.DKIMResults), MaxDKIMResults)
	}
}

func TestNormalizeRejects(t *testing.T) {
	for name, r := range map[string]Record{
		"no domain":  {Policy: Policy{P: "none"}, Row: Row{SourceIP: "192.0.2.1"}},
		"bad p":      {Policy: Policy{Domain: "example.com", P: "monitor"}, Row: Row{SourceIP: "192.0.2.1"}},
		"bad ip":     {Policy: Policy{Domain: "example.com", P: "none"}, Row: Row{SourceIP: "mx.example.com"}},
		"bad reason": {Policy: Policy{Domain: "example.com", P: "none"}, Row: Row{SourceIP: "192.0.2.1", Reasons: []Reason{{Type: "forwarded"}}}},
	} {
		if err := r.Normalize(); err == nil || !strings.HasPrefix(err.Error(), "dmarcreport: ") {
			t.Errorf("%s: Normalize = %v", name, err)
		}
	}
}

func TestPeriod(t *testing.T) {
	for _, c := range []struct {
		t        time.Time
		interval time.Duration
		want     time.Time
	}{
		{time.Date(2026, 12, 5, 23, 59, 59, 0, time.UTC), 24 * time.Hour, time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 12, 5, 1, 30, 0, 0, time.FixedZone("CET", 3600)), 24 * time.Hour, time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 12, 5, 10, 7, 30, 0, time.UTC), time.Minute, time.Date(2026, 12, 5, 10, 7, 0, 0, time.UTC)},
		{time.Date(2026, 12, 5, 10, 7, 30, 0, time.UTC), 0, time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)},
	} {
		if got := Period(c.t, c.interval); !got.Equal(c.want) {
			t.Errorf("Period(%v, %v) = %v, want %v", c.t, c.interval, got, c.want)
		}
	}
}

func FuzzParseRow(f *testing.F) {
	for _, r := range sampleReports() {
		for _, cr := range r.Rows {
			f.Add(cr.Row.Key())
		}
	}
	f.Add(`{"ip":`)
	f.Fuzz(func(t *testing.T, key string) {
		r, err := ParseRow(key)
		if err != nil {
			return
		}
		again, err := ParseRow(r.Key())
		if err != nil || again.Key() != r.Key() {
			t.Fatalf("Key of a parsed row does not round-trip: %q", key)
		}
	})
}
