package reporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dmarcreport/store"
	"github.com/authmilter/authmilter/internal/testsupport/pgtest"
)

// TestPostgresDown: the database stops under load. Record keeps returning
// at once, records past the bound are dropped and counted, and once the
// database is back every record is accounted for: stored = recorded, and
// recorded + dropped = offered.
func TestPostgresDown(t *testing.T) {
	pg := pgtest.Start(t)
	st := openStore(t, pg.CreateDB(t, "down"))
	r := NewRecorder(st, RecorderOptions{QueueSize: 200, FlushEvery: 20 * time.Millisecond, WriteTimeout: 2 * time.Second})
	start(t, r)
	offered := 0
	offer := func(n int) time.Duration {
		var worst time.Duration
		for i := range n {
			t0 := time.Now()
			r.Record(rec("example.com", fmt.Sprintf("192.0.2.%d", i%50), day))
			worst = max(worst, time.Since(t0))
			offered++
			if i%50 == 0 {
				time.Sleep(time.Millisecond) // a steady stream, not one burst
			}
		}
		return worst
	}
	offer(300)
	pg.Stop(t)
	worst := offer(3000)
	if worst > time.Second {
		t.Errorf("Record took %v while the database was down", worst)
	}
	if r.Dropped() == 0 {
		t.Errorf("nothing dropped with the database down (recorded %d of %d)", r.Recorded(), offered)
	}
	pg.Restart(t)
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := r.Flush(ctx)
		if err == nil && r.Queued() == 0 {
			if err := r.Flush(ctx); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recorder did not recover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ps, err := st.Periods(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var stored int64
	for _, p := range ps {
		stored += p.Messages
	}
	t.Logf("offered %d, recorded %d, dropped %d, stored %d, failed writes %d", offered, r.Recorded(), r.Dropped(), stored, r.Failures())
	if uint64(stored) != r.Recorded() || r.Recorded()+r.Dropped() != uint64(offered) {
		t.Errorf("offered %d, recorded %d, dropped %d, stored %d: a record is unaccounted for or counted twice", offered, r.Recorded(), r.Dropped(), stored)
	}
}
