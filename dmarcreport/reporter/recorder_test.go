package reporter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dmarcreport"
	"github.com/authmilter/authmilter/dmarcreport/store"
)

var day = time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)

func rec(domain, ip string, at time.Time) dmarcreport.Record {
	return dmarcreport.Record{
		Policy: dmarcreport.Policy{Domain: domain, P: "reject", RUA: []string{"mailto:dmarc@" + domain}},
		Row: dmarcreport.Row{SourceIP: ip, Disposition: dmarcreport.DispositionReject, DKIM: dmarcreport.AlignedFail,
			SPF: dmarcreport.AlignedFail, HeaderFrom: domain, EnvelopeFrom: domain},
		Time: at,
	}
}

func openStore(t testing.TB, dsn string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func start(t *testing.T, r *Recorder) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("Recorder.Run did not return")
		}
	})
}

func TestRecorderSums(t *testing.T) {
	s := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "r.db"))
	r := NewRecorder(s, RecorderOptions{FlushEvery: time.Hour})
	start(t, r)
	for i := range 100 {
		r.Record(rec("example.com", fmt.Sprintf("192.0.2.%d", i%3), day.Add(time.Duration(i)*time.Minute)))
	}
	r.Record(rec("example.com", "192.0.2.1", day.Add(25*time.Hour))) // the next day
	bad := rec("example.com", "not-an-ip", day)
	r.Record(bad)
	ctx := context.Background()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r.Recorded() != 101 || r.Invalid() != 1 || r.Dropped() != 0 {
		t.Errorf("recorded %d, invalid %d, dropped %d", r.Recorded(), r.Invalid(), r.Dropped())
	}
	ps, err := s.Periods(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Messages != 100 || ps[1].Messages != 1 || !ps[0].End.Equal(day.Add(24*time.Hour-time.Second)) {
		t.Errorf("periods %+v", ps)
	}
	_, rows, _ := s.Report(ctx, day, "example.com")
	if len(rows) != 3 || rows[0].Count != 34 {
		t.Errorf("rows %+v", rows)
	}
}

// TestRecorderFlushesByItself: without Flush, a record reaches the store
// within FlushEvery.
func TestRecorderFlushesByItself(t *testing.T) {
	s := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "r.db"))
	r := NewRecorder(s, RecorderOptions{FlushEvery: 50 * time.Millisecond})
	start(t, r)
	r.Record(rec("example.com", "192.0.2.1", day))
	deadline := time.Now().Add(10 * time.Second)
	for r.Recorded() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the record was not written within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gate is a store that is down or hangs on demand.
type gate struct {
	mu      sync.Mutex
	err     error         // returned while set
	hold    chan struct{} // Add waits for it to close, when set
	entered chan struct{}
	added   int64
}

func (g *gate) Add(ctx context.Context, cs []store.Count) error {
	g.mu.Lock()
	hold, err := g.hold, g.err
	g.mu.Unlock()
	if hold != nil {
		g.entered <- struct{}{}
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
		g.mu.Lock()
		err = g.err
		g.mu.Unlock()
	}
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range cs {
		g.added += c.N
	}
	return nil
}

// TestRecorderStoreDown: a hanging, then failing store never blocks the
// caller; records past the bound are dropped and counted, the rest reach
// the store once it is back.
func TestRecorderStoreDown(t *testing.T) {
	g := &gate{hold: make(chan struct{}), entered: make(chan struct{}, 1), err: errors.New("connection refused")}
	r := NewRecorder(g, RecorderOptions{QueueSize: 10, FlushEvery: time.Hour})
	start(t, r)
	ctx := context.Background()
	for range 5 {
		r.Record(rec("example.com", "192.0.2.1", day))
	}
	flushed := make(chan error, 1)
	go func() { flushed <- r.Flush(ctx) }()
	<-g.entered // the batch of 5 hangs in the store

	// Mail keeps flowing: Record returns at once while the store hangs.
	done := make(chan struct{})
	go func() {
		for range 30 {
			r.Record(rec("example.com", "192.0.2.2", day))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Record blocked while the store hung")
	}
	// The bound counts the 5 held in the hanging batch: 5 more fit.
	if r.Dropped() != 25 || r.Queued() != 5 {
		t.Errorf("dropped %d, queued %d; want 25 and 5 (30 offered, 5 held, bound 10)", r.Dropped(), r.Queued())
	}
	g.mu.Lock()
	hold := g.hold
	g.hold = nil
	g.mu.Unlock()
	close(hold)
	if err := <-flushed; err == nil {
		t.Fatal("a flush to a store that is down succeeded")
	}
	// Still down: the queued 5 join the batch, which is now at the bound.
	if err := r.Flush(ctx); err == nil {
		t.Fatal("flush succeeded while the store is down")
	}
	for range 10 {
		r.Record(rec("example.com", "192.0.2.3", day))
	}
	if r.Dropped() != 35 {
		t.Errorf("dropped %d, want 35", r.Dropped())
	}
	// The store comes back.
	g.mu.Lock()
	g.err = nil
	g.mu.Unlock()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r.Record(rec("example.com", "192.0.2.4", day)) // room again
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	added := g.added
	g.mu.Unlock()
	// At least the two failed flushes; a half-full queue may add tries.
	if added != 11 || r.Recorded() != 11 || r.Failures() < 2 || r.Dropped() != 35 {
		t.Errorf("added %d, recorded %d, failures %d, dropped %d; want 11, 11, ≥2, 35", added, r.Recorded(), r.Failures(), r.Dropped())
	}
}

// The kill test's child: it records batches of killBatch into the store
// named by envKillChild and prints "flushed N" after each, until killed.
const (
	envKillChild = "AUTHMILTER_TEST_RECORDER_CHILD"
	killBatch    = 500
)

func TestKillChild(t *testing.T) {
	dsn := os.Getenv(envKillChild)
	if dsn == "" {
		t.Skip("the child of TestKillMidFlush")
	}
	s := openStore(t, dsn)
	r := NewRecorder(s, RecorderOptions{FlushEvery: time.Hour, QueueSize: killBatch})
	start(t, r)
	for i := 0; ; i++ {
		for j := range killBatch {
			// Distinct rows make each transaction long enough to be
			// killed in the middle of.
			r.Record(rec("example.com", fmt.Sprintf("10.%d.%d.%d", i%250, j/250, j%250), day))
		}
		if err := r.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("flushed %d\n", (i+1)*killBatch)
	}
}

// TestKillMidFlush: a process killed (SIGKILL) while writing batches
// leaves whole batches only: nothing counted twice or half.
func TestKillMidFlush(t *testing.T) {
	if os.Getenv(envKillChild) != "" {
		t.Skip("in the child")
	}
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "r.db")
	openStore(t, dsn) // create the schema before the child races us
	var before int64
	for round := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKillChild$", "-test.v")
		cmd.Env = append(os.Environ(), envKillChild+"="+dsn)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		flushed := 0
		// Kill it at a different point of a flush each round.
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "flushed "); ok {
				flushed, _ = strconv.Atoi(n)
				if flushed >= (round+2)*killBatch {
					time.Sleep(time.Duration(round) * 7 * time.Millisecond)
					break
				}
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		cancel()

		s := openStore(t, dsn)
		ps, err := s.Periods(context.Background(), store.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, p := range ps {
			total += p.Messages
		}
		s.Close()
		if total%killBatch != 0 {
			t.Fatalf("round %d: %d messages stored, not a whole number of batches of %d", round, total, killBatch)
		}
		// What the child reported written is there; at most the batch it
		// was writing when killed is there too, whole.
		if got := total - before; got < int64(flushed) || got > int64(flushed)+killBatch {
			t.Fatalf("round %d: the child reported %d written, the store gained %d", round, flushed, got)
		}
		t.Logf("round %d: child reported %d written, the store gained %d", round, flushed, total-before)
		before = total
	}
}

// TestRecorderHalfFull: a burst that fills half the queue is written at
// once, not at the next tick.
func TestRecorderHalfFull(t *testing.T) {
	g := &gate{}
	r := NewRecorder(g, RecorderOptions{QueueSize: 10, FlushEvery: time.Hour})
	start(t, r)
	for range 4 {
		r.Record(rec("example.com", "192.0.2.1", day))
	}
	time.Sleep(50 * time.Millisecond)
	if r.Recorded() != 0 {
		t.Fatalf("written before the queue was half full: %d", r.Recorded())
	}
	r.Record(rec("example.com", "192.0.2.1", day))
	deadline := time.Now().Add(10 * time.Second)
	for r.Recorded() != 5 {
		if time.Now().After(deadline) {
			t.Fatalf("a half-full queue was not written within 10s (recorded %d)", r.Recorded())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
