package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dmarcreport"
	"github.com/authmilter/authmilter/internal/testsupport/pgtest"
)

// BenchmarkAdd measures the store's recording throughput: messages per
// second written as the Recorder writes them, in batches of 1000 messages
// that fall on 100 distinct rows of 10 domains (one transaction each).
//
//	go test -run '^$' -bench Add -benchtime 20x ./dmarcreport/store
func BenchmarkAdd(b *testing.B) {
	const perBatch, distinct = 1000, 100
	batch := make([]Count, 0, distinct)
	for i := range distinct {
		d := fmt.Sprintf("example%d.com", i%10)
		r := dmarcreport.Record{
			Policy: dmarcreport.Policy{Domain: d, P: "reject", RUA: []string{"mailto:dmarc@" + d}},
			Row: dmarcreport.Row{SourceIP: fmt.Sprintf("192.0.2.%d", i), Disposition: dmarcreport.DispositionPass,
				DKIM: dmarcreport.AlignedPass, SPF: dmarcreport.AlignedPass, HeaderFrom: d, EnvelopeFrom: d,
				DKIMResults: []dmarcreport.DKIMResult{{Domain: d, Selector: "s1", Result: "pass"}},
				SPFResult:   &dmarcreport.SPFResult{Domain: d, Result: "pass"}},
		}
		if err := r.Normalize(); err != nil {
			b.Fatal(err)
		}
		day := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
		batch = append(batch, Count{Begin: day, End: day.Add(24*time.Hour - time.Second), Policy: r.Policy, Row: r.Row.Key(), N: perBatch / distinct})
	}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			var dsn string
			if name == "sqlite" {
				dsn = "sqlite:" + filepath.Join(b.TempDir(), "r.db")
			} else {
				dsn = pgtest.Start(b).CreateDB(b, "bench")
			}
			s, err := Open(context.Background(), dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if err := s.Add(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/batch")
		})
	}
}
