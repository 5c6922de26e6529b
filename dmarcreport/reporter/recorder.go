// Package reporter records judged messages into a report store without
// ever holding up the caller (Recorder), and sends the reports of closed
// periods by SMTP (Sender).
package reporter

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authmilter/authmilter/dmarcreport"
	"github.com/authmilter/authmilter/dmarcreport/store"
)

// Adder is where a Recorder writes: *store.Store, or a test's fake.
type Adder interface {
	Add(ctx context.Context, counts []store.Count) error
}

// RecorderOptions tune a Recorder. Zero values mean the defaults.
type RecorderOptions struct {
	// Interval is the reporting period (default 24h: UTC days).
	Interval time.Duration
	// QueueSize bounds the records waiting to be written, queued and in
	// the batch being retried together (default 10000). Past it, records
	// are dropped and counted.
	QueueSize int
	// FlushEvery is the longest a record waits before its batch is
	// written (default 1s); a queue half full is written at once.
	FlushEvery time.Duration
	// WriteTimeout bounds one batch's write (default 10s); a batch that
	// fails is kept and tried again at the next flush.
	WriteTimeout time.Duration
	// Logger receives the rate-limited "dropped" and "store failed" lines.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Recorder queues records in memory and writes them to the store in
// batches, one transaction per batch. Record never blocks and never wakes
// another goroutine: it appends to a buffer under a mutex, which Run takes
// whole once per FlushEvery (a goroutine woken per message cost more CPU
// than the record itself).
type Recorder struct {
	adder Adder
	o     RecorderOptions
	flush chan chan error
	kick  chan struct{} // the queue is half full: write now

	mu   sync.Mutex
	buf  []dmarcreport.Record // taken by Run at each flush
	held atomic.Int64         // records Run holds in a batch not yet written

	recorded, dropped, invalid, failures atomic.Uint64

	logMu       sync.Mutex
	lastDropLog time.Time
	lastErrLog  time.Time
}

// NewRecorder returns a Recorder writing to a; Run must be running for
// records to reach the store.
func NewRecorder(a Adder, o RecorderOptions) *Recorder {
	if o.Interval <= 0 {
		o.Interval = 24 * time.Hour
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 10000
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Recorder{adder: a, o: o, flush: make(chan chan error), kick: make(chan struct{}, 1)}
}

// Record queues rec for the store. It never blocks: when the records
// waiting (queued, and held in a batch the store has not taken yet) reach
// QueueSize, because the store is slow or down, rec is dropped and
// counted.
func (r *Recorder) Record(rec dmarcreport.Record) {
	if rec.Time.IsZero() {
		rec.Time = r.o.Now()
	}
	r.mu.Lock()
	if len(r.buf)+int(r.held.Load()) >= r.o.QueueSize {
		r.mu.Unlock()
		r.dropped.Add(1)
		r.logLimited(&r.lastDropLog, "dmarc reports: queue full, records dropped", slog.Uint64("dropped_total", r.dropped.Load()))
		return
	}
	r.buf = append(r.buf, rec)
	half := len(r.buf) == r.o.QueueSize/2
	r.mu.Unlock()
	if half {
		// A burst: write before the next tick rather than drop. One
		// wake-up per half queue, not per record.
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// Recorded returns how many records reached the store.
func (r *Recorder) Recorded() uint64 { return r.recorded.Load() }

// Dropped returns how many records were dropped because the queue was full.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Invalid returns how many records could not be reported (Normalize
// failed).
func (r *Recorder) Invalid() uint64 { return r.invalid.Load() }

// Failures returns how many batch writes failed.
func (r *Recorder) Failures() uint64 { return r.failures.Load() }

// Queued returns how many records wait to be taken into a batch.
func (r *Recorder) Queued() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.buf)
}

// logLimited writes msg at most once a minute per kind.
func (r *Recorder) logLimited(last *time.Time, msg string, attrs ...any) {
	now := time.Now()
	r.logMu.Lock()
	if now.Sub(*last) < time.Minute {
		r.logMu.Unlock()
		return
	}
	*last = now
	r.logMu.Unlock()
	r.o.Logger.Warn(msg, attrs...)
}

// batch is the records taken from the queue and not yet written, added
// up by row.
type batch struct {
	counts map[string]*store.Count // by period, domain and row key
	n      int                     // records in it
}

func (b *batch) add(rec dmarcreport.Record, interval time.Duration) error {
	if err := rec.Normalize(); err != nil {
		return err
	}
	begin := dmarcreport.Period(rec.Time, interval)
	key := rec.Row.Key()
	k := begin.Format(time.RFC3339) + "\x00" + rec.Policy.Domain + "\x00" + key
	if c, ok := b.counts[k]; ok {
		c.N++
		c.Policy = rec.Policy
	} else {
		b.counts[k] = &store.Count{Begin: begin, End: begin.Add(interval - time.Second), Policy: rec.Policy, Row: key, N: 1}
	}
	b.n++
	return nil
}

// Run writes batches until ctx ends, then writes what is queued once more
// (bounded by WriteTimeout) and returns.
func (r *Recorder) Run(ctx context.Context) {
	b := &batch{counts: map[string]*store.Count{}}
	var spare []dmarcreport.Record
	t := time.NewTicker(r.o.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			spare = r.take(b, spare)
			r.write(context.Background(), b)
			return
		case <-t.C:
			spare = r.take(b, spare)
			r.write(ctx, b)
		case <-r.kick:
			spare = r.take(b, spare)
			r.write(ctx, b)
		case done := <-r.flush:
			spare = r.take(b, spare)
			done <- r.write(ctx, b)
		}
	}
}

// take moves the queued records into b, and returns the emptied buffer
// for reuse.
func (r *Recorder) take(b *batch, spare []dmarcreport.Record) []dmarcreport.Record {
	r.mu.Lock()
	queued := r.buf
	r.buf = spare[:0]
	// Counted as held before the lock is released: the bound stays exact.
	r.held.Add(int64(len(queued)))
	r.mu.Unlock()
	for i := range queued {
		if err := b.add(queued[i], r.o.Interval); err != nil {
			r.invalid.Add(1)
			r.held.Add(-1)
			r.logLimited(&r.lastErrLog, "dmarc reports: record not reportable", slog.String("error", err.Error()))
		}
		queued[i] = dmarcreport.Record{}
	}
	return queued
}

// write writes b in one transaction and empties it; on failure b is kept
// for the next try.
func (r *Recorder) write(ctx context.Context, b *batch) error {
	if b.n == 0 {
		return nil
	}
	counts := make([]store.Count, 0, len(b.counts))
	for _, c := range b.counts {
		counts = append(counts, *c)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.o.WriteTimeout)
	defer cancel()
	if err := r.adder.Add(wctx, counts); err != nil {
		r.failures.Add(1)
		r.logLimited(&r.lastErrLog, "dmarc reports: writing to the store failed; records wait in memory", slog.String("error", err.Error()), slog.Int("waiting", b.n))
		return err
	}
	r.recorded.Add(uint64(b.n))
	r.held.Add(-int64(b.n))
	clear(b.counts)
	b.n = 0
	return nil
}

// Flush writes everything queued now and waits for it (SIGTERM, SIGHUP,
// report send). It returns the write's error, or ctx's if Run is not
// running or ctx ends first.
func (r *Recorder) Flush(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case r.flush <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
