package engine

import (
	"strings"
	"sync"
	"testing"

	"github.com/authmilter/authmilter/dmarcreport"
)

// collector keeps the records an engine reports.
type collector struct {
	mu   sync.Mutex
	recs []dmarcreport.Record
}

func (c *collector) record(r dmarcreport.Record) {
	c.mu.Lock()
	c.recs = append(c.recs, r)
	c.mu.Unlock()
}

func (c *collector) take() []dmarcreport.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.recs
	c.recs = nil
	return out
}

func TestEngineReports(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.dns.TXT["_dmarc.testing.example"] = []string{"v=DMARC1; p=reject; t=y; rua=mailto:d@testing.example; fo=1; adkim=s"}
	w.dns.TXT["testing.example"] = []string{"v=spf1 -all"}
	c := &collector{}
	e := w.engine(func(e *Engine) { e.Reports = &Reporting{Record: c.record, EnvelopeTo: true} })
	signed := w.sign(t, "example.com", "sel", msgText("example.com", "", "Hello.\r\n"))

	for _, tc := range []struct {
		name  string
		env   Envelope
		msg   string
		check func(t *testing.T, recs []dmarcreport.Record)
	}{
		{"DKIM and SPF pass", env("192.0.2.1", "mx.example.com", "alice@example.com"), signed, func(t *testing.T, recs []dmarcreport.Record) {
			r := recs[0]
			if r.Policy.Domain != "example.com" || r.Policy.P != "reject" || r.Policy.Discovery != "treewalk" || r.Policy.Testing != "n" {
				t.Errorf("policy %+v", r.Policy)
			}
			row := r.Row
			if row.Disposition != dmarcreport.DispositionPass || row.DKIM != dmarcreport.AlignedPass || row.SPF != dmarcreport.AlignedPass ||
				row.SourceIP != "192.0.2.1" || row.HeaderFrom != "example.com" || row.EnvelopeFrom != "example.com" || row.EnvelopeTo != "mx.test" {
				t.Errorf("row %+v", row)
			}
			if len(row.DKIMResults) != 1 || row.DKIMResults[0].Selector != "sel" || row.DKIMResults[0].Result != "pass" ||
				row.SPFResult == nil || row.SPFResult.Domain != "example.com" || row.SPFResult.Result != "pass" {
				t.Errorf("auth_results %+v %+v", row.DKIMResults, row.SPFResult)
			}
			if r.Time.IsZero() {
				t.Error("no time")
			}
		}},
		{"rejected", env("198.51.100.1", "mx.evil.test", "x@example.com"), msgText("example.com", "", "Hi.\r\n"), func(t *testing.T, recs []dmarcreport.Record) {
			row := recs[0].Row
			if row.Disposition != dmarcreport.DispositionReject || row.DKIM != dmarcreport.AlignedFail || row.SPF != dmarcreport.AlignedFail ||
				len(row.Reasons) != 0 || row.SPFResult.Result != "fail" {
				t.Errorf("row %+v", row)
			}
		}},
		{"t=y", env("198.51.100.1", "mx.evil.test", "x@testing.example"), msgText("testing.example", "", "Hi.\r\n"), func(t *testing.T, recs []dmarcreport.Record) {
			r := recs[0]
			if r.Policy.Testing != "y" || r.Policy.FO != "1" || r.Policy.ADKIM != "s" || len(r.Policy.RUA) != 1 {
				t.Errorf("policy %+v", r.Policy)
			}
			if r.Row.Disposition != dmarcreport.DispositionQuarantine || len(r.Row.Reasons) != 1 || r.Row.Reasons[0].Type != dmarcreport.ReasonPolicyTestMode {
				t.Errorf("row %+v", r.Row)
			}
		}},
		{"no DMARC record", env("192.0.2.1", "mx.example.com", "alice@example.com"), msgText("nodmarc.example", "", "Hi.\r\n"), func(t *testing.T, recs []dmarcreport.Record) {
			if len(recs) != 0 {
				t.Errorf("a message without DMARC policy was reported: %+v", recs)
			}
		}},
		{"internal", env("127.0.0.1", "localhost", "alice@example.com"), msgText("example.com", "", "Hi.\r\n"), func(t *testing.T, recs []dmarcreport.Record) {
			if len(recs) != 0 {
				t.Errorf("an internal message was reported: %+v", recs)
			}
		}},
		{"tempfail", env("198.51.100.1", "mx.evil.test", "x@tempfail.example"), msgText("tempfail.example", "", "Hi.\r\n"), func(t *testing.T, recs []dmarcreport.Record) {
			if len(recs) != 0 {
				t.Errorf("a tempfailed message was reported: %+v", recs)
			}
		}},
	} {
		run(t, e, tc.env, tc.msg)
		recs := c.take()
		t.Run(tc.name, func(t *testing.T) {
			if len(recs) > 1 {
				t.Fatalf("%d records for one message", len(recs))
			}
			if len(recs) == 0 && !strings.Contains("no DMARC record internal tempfail", tc.name) {
				t.Fatal("no record")
			}
			for i := range recs {
				if err := recs[i].Normalize(); err != nil {
					t.Fatalf("the record is not reportable: %v", err)
				}
			}
			tc.check(t, recs)
		})
	}
}

func TestEngineReportsOverride(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := &collector{}
	e := w.engine(func(e *Engine) {
		e.Reports = &Reporting{Record: c.record}
		e.Policy.Enforce = false
	})
	run(t, e, env("198.51.100.1", "mx.evil.test", "x@example.com"), msgText("example.com", "", "Hi.\r\n"))
	recs := c.take()
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	row := recs[0].Row
	if row.Disposition != dmarcreport.DispositionNone || len(row.Reasons) != 1 || row.Reasons[0].Type != dmarcreport.ReasonLocalPolicy || row.EnvelopeTo != "" {
		t.Errorf("monitor mode: %+v", row)
	}
	allow := w.engine(func(e *Engine) {
		e.Reports = &Reporting{Record: c.record}
		e.Policy.AllowDomains = []string{"example.com"}
	})
	run(t, allow, env("198.51.100.1", "mx.evil.test", "x@example.com"), msgText("example.com", "", "Hi.\r\n"))
	recs = c.take()
	if len(recs) != 1 || recs[0].Row.Disposition != dmarcreport.DispositionNone || recs[0].Row.Reasons[0].Type != dmarcreport.ReasonLocalPolicy ||
		!strings.Contains(recs[0].Row.Reasons[0].Comment, "allow_domains") {
		t.Errorf("allow_domains: %+v", recs)
	}
}
