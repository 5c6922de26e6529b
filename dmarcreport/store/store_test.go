package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dmarcreport"
	"github.com/authmilter/authmilter/internal/testsupport/pgtest"
)

// backends opens a fresh store on each backend.
func backends(t *testing.T) map[string]func(t *testing.T) string {
	var once sync.Once
	var pg *pgtest.Server
	n := 0
	var mu sync.Mutex
	return map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string {
			return "sqlite:" + filepath.Join(t.TempDir(), "reports.db")
		},
		"postgres": func(t *testing.T) string {
			once.Do(func() { pg = pgtest.Start(t) })
			if pg == nil {
				t.SkipNow()
			}
			mu.Lock()
			n++
			name := fmt.Sprintf("t%d", n)
			mu.Unlock()
			return pg.CreateDB(t, name)
		},
	}
}

func forEach(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	b := backends(t)
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) { f(t, b[name](t)) })
	}
}

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var day = time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)

func count(domain, ip string, n int64) Count {
	r := dmarcreport.Record{
		Policy: dmarcreport.Policy{Domain: domain, P: "reject", RUA: []string{"mailto:d@" + domain}},
		Row: dmarcreport.Row{SourceIP: ip, Disposition: dmarcreport.DispositionPass, DKIM: dmarcreport.AlignedPass,
			SPF: dmarcreport.AlignedFail, HeaderFrom: domain},
	}
	if err := r.Normalize(); err != nil {
		panic(err)
	}
	return Count{Begin: day, End: day.Add(24*time.Hour - time.Second), Policy: r.Policy, Row: r.Row.Key(), N: n}
}

func TestAddSums(t *testing.T) {
	forEach(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := open(t, dsn)
		if err := s.Add(ctx, []Count{count("example.com", "192.0.2.1", 2), count("example.com", "192.0.2.2", 1), count("example.org", "192.0.2.1", 5)}); err != nil {
			t.Fatal(err)
		}
		later := count("example.com", "192.0.2.1", 3)
		later.Policy.P = "quarantine" // the last policy seen wins
		if err := s.Add(ctx, []Count{later}); err != nil {
			t.Fatal(err)
		}
		pol, rows, err := s.Report(ctx, day, "example.com")
		if err != nil {
			t.Fatal(err)
		}
		if pol.P != "quarantine" || len(pol.RUA) != 1 {
			t.Errorf("policy %+v", pol)
		}
		if len(rows) != 2 || rows[0].Count != 5 || rows[0].SourceIP != "192.0.2.1" || rows[1].Count != 1 {
			t.Errorf("rows %+v", rows)
		}
		ps, err := s.Periods(ctx, Filter{ClosedBefore: day.Add(48 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 2 || ps[0].Domain != "example.com" || ps[0].Messages != 6 || ps[1].Messages != 5 || ps[0].State != StatePending {
			t.Errorf("periods %+v", ps)
		}
		if ps, _ := s.Periods(ctx, Filter{ClosedBefore: day.Add(time.Hour)}); len(ps) != 0 {
			t.Errorf("open periods listed as closed: %+v", ps)
		}
		if ps, _ := s.Periods(ctx, Filter{OpenAt: day.Add(time.Hour), Domain: "EXAMPLE.org"}); len(ps) != 1 {
			t.Errorf("open period of example.org: %+v", ps)
		}
		if _, _, err := s.Report(ctx, day, "example.net"); !errors.Is(err, ErrNoPeriod) {
			t.Errorf("Report of an unknown domain: %v", err)
		}
		if v, err := s.SchemaVersion(ctx); err != nil || v != len(migrations) {
			t.Errorf("schema version %d, %v", v, err)
		}
		// Opening again applies nothing twice.
		open(t, dsn)
	})
}

// TestConcurrentWriters: two stores on one database (two hosts) add to the
// same rows at once; the sums are exact.
func TestConcurrentWriters(t *testing.T) {
	forEach(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		// Two hosts start at once: the migrations apply once.
		var a, b *Store
		var errA, errB error
		var owg sync.WaitGroup
		owg.Add(2)
		go func() { defer owg.Done(); a, errA = Open(ctx, dsn) }()
		go func() { defer owg.Done(); b, errB = Open(ctx, dsn) }()
		owg.Wait()
		if a == nil || b == nil {
			t.Fatalf("concurrent Open: %v, %v", errA, errB)
		}
		defer a.Close()
		defer b.Close()
		const batches, perBatch = 20, 10
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for _, s := range []*Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range batches {
					var cs []Count
					for j := range perBatch {
						cs = append(cs, count("example.com", fmt.Sprintf("192.0.2.%d", (i+j)%4), 1))
					}
					cs = append(cs, count("example.org", "192.0.2.9", 1))
					if err := s.Add(ctx, cs); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		ps, err := a.Periods(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{"example.com": 2 * batches * perBatch, "example.org": 2 * batches}
		for _, p := range ps {
			if p.Messages != want[p.Domain] {
				t.Errorf("%s: %d messages, want %d", p.Domain, p.Messages, want[p.Domain])
			}
		}
		if len(ps) != 2 {
			t.Errorf("periods %+v", ps)
		}
	})
}

func TestClaim(t *testing.T) {
	forEach(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := open(t, dsn)
		if err := s.Add(ctx, []Count{count("example.com", "192.0.2.1", 1)}); err != nil {
			t.Fatal(err)
		}
		now := day.Add(25 * time.Hour)
		if ok, err := s.Claim(ctx, day, "example.com", "a", day.Add(time.Hour), day.Add(2*time.Hour)); ok || err != nil {
			t.Fatalf("claimed an open period: %v %v", ok, err)
		}
		if ok, err := s.Claim(ctx, day, "example.com", "a", now, now.Add(time.Minute)); !ok || err != nil {
			t.Fatalf("first claim: %v %v", ok, err)
		}
		if ok, _ := s.Claim(ctx, day, "example.com", "b", now, now.Add(time.Minute)); ok {
			t.Fatal("a second host claimed a held report")
		}
		// a crashes; its claim lapses and b takes over.
		now = now.Add(2 * time.Minute)
		if ok, _ := s.Claim(ctx, day, "example.com", "b", now, now.Add(time.Minute)); !ok {
			t.Fatal("a lapsed claim was not taken over")
		}
		if err := s.MarkSent(ctx, day, "example.com", "a", now); err == nil {
			t.Fatal("a lapsed claimant marked the report sent")
		}
		if err := s.MarkFailed(ctx, day, "example.com", "b", now.Add(time.Hour), false); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.Claim(ctx, day, "example.com", "b", now, now.Add(time.Minute)); ok {
			t.Fatal("claimed before the retry was due")
		}
		now = now.Add(time.Hour)
		if ok, _ := s.Claim(ctx, day, "example.com", "b", now, now.Add(time.Minute)); !ok {
			t.Fatal("retry not claimable")
		}
		if err := s.MarkSent(ctx, day, "example.com", "b", now); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.Claim(ctx, day, "example.com", "a", now.Add(time.Hour), now.Add(2*time.Hour)); ok {
			t.Fatal("a sent report was claimed again")
		}
		ps, _ := s.Periods(ctx, Filter{})
		if len(ps) != 1 || ps[0].State != StateSent || ps[0].Attempts != 2 || !ps[0].SentAt.Equal(now) {
			t.Errorf("period %+v", ps)
		}
	})
}

func TestPrune(t *testing.T) {
	forEach(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := open(t, dsn)
		old := count("example.com", "192.0.2.1", 1)
		recent := old
		recent.Begin, recent.End = day.Add(24*time.Hour), day.Add(48*time.Hour-time.Second)
		if err := s.Add(ctx, []Count{old, recent}); err != nil {
			t.Fatal(err)
		}
		n, err := s.Prune(ctx, day.Add(24*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("Prune = %d, %v", n, err)
		}
		if _, rows, err := s.Report(ctx, recent.Begin, "example.com"); err != nil || len(rows) != 1 {
			t.Errorf("recent period: %v %v", rows, err)
		}
		if _, _, err := s.Report(ctx, day, "example.com"); !errors.Is(err, ErrNoPeriod) {
			t.Errorf("old period: %v", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, dsn := range []string{"mysql://x", "sqlite:", "sqlite:" + filepath.Join(t.TempDir(), "missing", "r.db"), "postgres://u:secret@127.0.0.1:1/db?connect_timeout=1"} {
		_, err := Open(ctx, dsn)
		if err == nil {
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q): the error shows the password: %v", dsn, err)
		}
	}
}
