package reporter

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/authmilter/authmilter/internal/testsupport/pgtest"
)

// TestFleet: two hosts share one store; each records half of the messages,
// then both send at the same moment. Each domain gets exactly one report
// per period, with the summed counts.
func TestFleet(t *testing.T) {
	dsns := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "r.db") },
		"postgres": func(t *testing.T) string { return pgtest.Start(t).CreateDB(t, "fleet") },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dsn := dsns[name](t)
			sk := newSink(t, nil)
			c := &clock{t: day.Add(12 * time.Hour)}
			domains := []string{"example.com", "example.org", "example.net", "example.info"}
			const perHost = 200
			hosts := make([]*Sender, 2)
			var wg sync.WaitGroup
			for h := range hosts {
				st := openStore(t, dsn)
				hosts[h] = newSender(t, st, sk, c, func(o *SenderOptions) {
					o.Owner = fmt.Sprintf("host%d", h)
					o.Resolver = resolver()
				})
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := NewRecorder(st, RecorderOptions{FlushEvery: 5 * time.Millisecond})
					rctx, cancel := context.WithCancel(ctx)
					done := make(chan struct{})
					go func() { r.Run(rctx); close(done) }()
					for i := range perHost {
						d := domains[i%len(domains)]
						r.Record(recWithRUA(d, fmt.Sprintf("192.0.2.%d", i%7), day.Add(time.Duration(i)*time.Minute), "mailto:dmarc@"+d))
					}
					if err := r.Flush(ctx); err != nil {
						t.Error(err)
					}
					cancel()
					<-done
				}()
			}
			wg.Wait()

			c.add(13 * time.Hour)
			sums := make([]Summary, 2)
			start := make(chan struct{})
			for h, s := range hosts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					var err error
					sums[h], err = s.SendDue(ctx)
					if err != nil {
						t.Error(err)
					}
				}()
			}
			close(start)
			wg.Wait()

			if sums[0].Sent+sums[1].Sent != len(domains) {
				t.Errorf("hosts sent %+v and %+v, want %d in all", sums[0], sums[1], len(domains))
			}
			got := map[string]int64{}
			for _, d := range sk.received() {
				_, _, _, fb := unpack(t, d.data)
				if _, dup := got[fb.Domain]; dup {
					t.Errorf("%s reported twice", fb.Domain)
				}
				got[fb.Domain] = fb.total()
			}
			for _, d := range domains {
				if got[d] != 2*perHost/int64(len(domains)) {
					t.Errorf("%s: %d messages reported, want %d", d, got[d], 2*perHost/len(domains))
				}
			}
		})
	}
}
