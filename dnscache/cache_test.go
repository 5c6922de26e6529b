package dnscache

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newTestCache returns a Cache with a fake clock in front of a Client of
// srv; edit adjusts the Config.
func newTestCache(t *testing.T, srv *testServer, edit func(*Config)) (*Cache, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	cfg := testConfig(srv.addr)
	cfg.Now = clock.Now
	if edit != nil {
		edit(&cfg)
	}
	return NewCache(newTestClient(t, cfg), cfg), clock
}

// TestCacheKeepsForTTL: a positive answer is kept for its TTL, clamped to
// [MinTTL, MaxTTL], then asked again.
func TestCacheKeepsForTTL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		answer []string
		keep   time.Duration
	}{
		{"record TTL", []string{"example.com. 300 IN TXT a"}, 300 * time.Second},
		{"lowest TTL of the RRset", []string{"example.com. 300 IN TXT a", "example.com. 120 IN TXT b"}, 120 * time.Second},
		{"lowest TTL of the CNAME chain", []string{"example.com. 90 IN CNAME b.example.net.", "b.example.net. 300 IN TXT b"}, 90 * time.Second},
		{"floor MinTTL", []string{"example.com. 5 IN TXT a"}, DefaultMinTTL},
		{"zero TTL", []string{"example.com. 0 IN TXT a"}, DefaultMinTTL},
		{"TTL with the high bit is zero (RFC 2181 §8)", []string{"example.com. 2147483648 IN TXT a"}, DefaultMinTTL},
		{"ceiling MaxTTL", []string{"example.com. 864000 IN TXT a"}, DefaultMaxTTL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, fixed(t, dns.RcodeSuccess, tc.answer))
			c, clock := newTestCache(t, srv, nil)
			lookup := func() {
				t.Helper()
				if _, _, err := c.LookupTXT(context.Background(), "example.com"); err != nil {
					t.Fatal(err)
				}
			}
			lookup()
			clock.Advance(tc.keep - time.Second)
			lookup()
			if n := srv.queries(); n != 1 {
				t.Fatalf("before expiry: %d queries, want 1", n)
			}
			clock.Advance(2 * time.Second)
			lookup()
			if n := srv.queries(); n != 2 {
				t.Fatalf("after expiry: %d queries, want 2", n)
			}
		})
	}
}

// TestCacheNegativeTTL: NXDOMAIN and NODATA are kept for the lower of the
// SOA record's TTL and its MINIMUM field (RFC 2308 §5), clamped.
func TestCacheNegativeTTL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		rcode     int
		answer    []string
		authority []string
		kind      error
		keep      time.Duration
	}{
		{"NXDOMAIN, SOA MINIMUM", dns.RcodeNameError, nil, []string{soaRR(3600, 120)}, ErrNXDomain, 120 * time.Second},
		{"NODATA, SOA MINIMUM", dns.RcodeSuccess, nil, []string{soaRR(3600, 120)}, ErrNoData, 120 * time.Second},
		{"NODATA, SOA TTL below MINIMUM", dns.RcodeSuccess, nil, []string{soaRR(90, 600)}, ErrNoData, 90 * time.Second},
		{"NXDOMAIN, ceiling MaxNegativeTTL", dns.RcodeNameError, nil, []string{soaRR(86400, 86400)}, ErrNXDomain, DefaultMaxNegativeTTL},
		{"NXDOMAIN, floor MinTTL", dns.RcodeNameError, nil, []string{soaRR(3600, 0)}, ErrNXDomain, DefaultMinTTL},
		{"NXDOMAIN without SOA", dns.RcodeNameError, nil, nil, ErrNXDomain, DefaultNegativeTTL},
		{"NXDOMAIN after a CNAME with a lower TTL", dns.RcodeNameError,
			[]string{"example.com. 60 IN CNAME gone.example.com."}, []string{soaRR(3600, 600)}, ErrNXDomain, 60 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, fixed(t, tc.rcode, tc.answer, tc.authority...))
			c, clock := newTestCache(t, srv, nil)
			lookup := func() {
				t.Helper()
				_, _, err := c.LookupTXT(context.Background(), "example.com")
				wantErr(t, err, tc.kind, false)
			}
			lookup()
			clock.Advance(tc.keep - time.Second)
			lookup()
			if n := srv.queries(); n != 1 {
				t.Fatalf("before expiry: %d queries, want 1", n)
			}
			clock.Advance(2 * time.Second)
			lookup()
			if n := srv.queries(); n != 2 {
				t.Fatalf("after expiry: %d queries, want 2", n)
			}
		})
	}
}

func soaRR(ttl, minimum int) string {
	return fmt.Sprintf("example.com. %d IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 %d", ttl, minimum)
}

// TestCacheTemporaryFailure: a temporary failure is remembered for
// TempFailTTL only, or not at all when it is negative.
func TestCacheTemporaryFailure(t *testing.T) {
	t.Parallel()
	t.Run("cached briefly", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, fixed(t, dns.RcodeServerFailure, nil))
		c, clock := newTestCache(t, srv, nil)
		for i, step := range []struct {
			advance time.Duration
			queries int64
		}{{0, 1}, {time.Second, 1}, {2 * time.Second, 2}} {
			clock.Advance(step.advance)
			_, _, err := c.LookupTXT(context.Background(), "example.com")
			wantErr(t, err, ErrTemporary, false)
			if n := srv.queries(); n != step.queries {
				t.Fatalf("step %d: %d queries, want %d", i, n, step.queries)
			}
		}
		if s := c.Stats(); s.Errors != 2 || s.Queries != 2 || s.Hits != 1 || s.Misses != 2 {
			t.Errorf("stats = %+v", s)
		}
	})
	t.Run("not cached", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, fixed(t, dns.RcodeServerFailure, nil))
		c, _ := newTestCache(t, srv, func(cfg *Config) { cfg.TempFailTTL = -1 })
		for range 3 {
			_, _, err := c.LookupTXT(context.Background(), "example.com")
			wantErr(t, err, ErrTemporary, false)
		}
		if n := srv.queries(); n != 3 {
			t.Fatalf("%d queries, want 3", n)
		}
	})
}

// TestCacheSingleflight: concurrent lookups of one question make one query.
func TestCacheSingleflight(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		time.Sleep(100 * time.Millisecond)
		respond(t, w, r, dns.RcodeSuccess, []string{`example.com. 300 IN TXT "one"`})
	})
	c, _ := newTestCache(t, srv, nil)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			txt, _, err := c.LookupTXT(context.Background(), "Example.com")
			if err == nil && (len(txt) != 1 || txt[0] != "one") {
				t.Errorf("TXT = %q", txt)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if q := srv.queries(); q != 1 {
		t.Errorf("%d upstream queries for %d concurrent lookups, want 1", q, n)
	}
	if s := c.Stats(); s.Queries != 1 || s.Hits+s.Misses != n {
		t.Errorf("stats = %+v", s)
	}
}

// TestCacheCallerGivesUp: a caller whose context ends returns at once; the
// query goes on for the others and its answer is cached.
func TestCacheCallerGivesUp(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		time.Sleep(200 * time.Millisecond)
		respond(t, w, r, dns.RcodeSuccess, []string{`example.com. 300 IN TXT "late"`})
	})
	c, _ := newTestCache(t, srv, func(cfg *Config) { cfg.Timeout = 2 * time.Second })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	first := make(chan error, 1)
	start := time.Now()
	go func() {
		_, _, err := c.LookupTXT(ctx, "example.com")
		first <- err
	}()
	time.Sleep(10 * time.Millisecond)
	txt, _, err := c.LookupTXT(context.Background(), "example.com")
	if err != nil || len(txt) != 1 || txt[0] != "late" {
		t.Fatalf("patient caller: TXT = %q, %v", txt, err)
	}
	err = <-first
	wantErr(t, err, ErrTemporary, true)

	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, _, err := c.LookupTXT(cancelled, "example.com"); err != nil {
		t.Errorf("cached answer with a cancelled context: %v", err)
	}
	if _, _, err := c.LookupTXT(cancelled, "other.example.com"); err == nil {
		t.Error("uncached name with a cancelled context: no error")
	}
	if q := srv.queries(); q != 1 {
		t.Errorf("%d upstream queries, want 1", q)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("took %v", elapsed)
	}
}

// TestCacheCallerReturnsPromptly: the impatient caller does not wait for
// the upstream query.
func TestCacheCallerReturnsPromptly(t *testing.T) {
	t.Parallel()
	c, _ := newTestCache(t, &testServer{addr: silentServer(t)}, func(cfg *Config) { cfg.Timeout = 5 * time.Second })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, _, err := c.LookupTXT(ctx, "example.com")
	wantErr(t, err, ErrTemporary, false)
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("lookup returned after %v, cancelled at 50ms", elapsed)
	}
}

// TestCacheKeys: entries are per type and per name without regard to case
// or the trailing dot.
func TestCacheKeys(t *testing.T) {
	t.Parallel()
	srv := startServer(t, recordsHandler(t,
		"example.com. 300 IN TXT a",
		"example.com. 300 IN A 192.0.2.1",
	))
	c, _ := newTestCache(t, srv, nil)
	ctx := context.Background()
	for _, name := range []string{"example.com", "EXAMPLE.com.", "example.COM"} {
		if _, _, err := c.LookupTXT(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.LookupA(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	if n := srv.queries(); n != 2 {
		t.Errorf("%d queries, want 2 (TXT and A)", n)
	}
}

// TestCacheSizeBound: the least recently used answer is evicted.
func TestCacheSizeBound(t *testing.T) {
	t.Parallel()
	srv := startServer(t, echoTXT(t))
	c, _ := newTestCache(t, srv, func(cfg *Config) { cfg.CacheSize = 2 })
	ctx := context.Background()
	for _, name := range []string{"a.example", "b.example", "c.example", "a.example"} {
		if _, _, err := c.LookupTXT(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s.Entries != 2 || s.Queries != 4 {
		t.Errorf("stats = %+v, want 2 entries after 4 queries", s)
	}
}

// TestCacheReturnsCopies: callers cannot change what others get.
func TestCacheReturnsCopies(t *testing.T) {
	t.Parallel()
	srv := startServer(t, recordsHandler(t, "example.com. 300 IN TXT a"))
	c, _ := newTestCache(t, srv, nil)
	ctx := context.Background()
	txt, _, _ := c.LookupTXT(ctx, "example.com")
	txt[0] = "changed"
	if again, _, _ := c.LookupTXT(ctx, "example.com"); !reflect.DeepEqual(again, []string{"a"}) {
		t.Errorf("cached TXT changed to %q", again)
	}
	_, _, err1 := c.LookupTXT(ctx, "nope.example.com")
	_, _, err2 := c.LookupTXT(ctx, "nope.example.com")
	e1, e2 := wantErr(t, err1, ErrNXDomain, false), wantErr(t, err2, ErrNXDomain, false)
	if e1 == e2 {
		t.Error("two callers share one *net.DNSError")
	}
}

// BenchmarkCacheHit measures a TXT lookup answered from a warm cache.
func BenchmarkCacheHit(b *testing.B) {
	c := warmCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.LookupTXT(ctx, "example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheHitParallel is BenchmarkCacheHit from every P at once.
func BenchmarkCacheHitParallel(b *testing.B) {
	c := warmCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := c.LookupTXT(ctx, "example.com"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func warmCache(b *testing.B) *Cache {
	srv := startServer(b, fixed(b, dns.RcodeSuccess, []string{`example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`}))
	c := NewCache(newTestClient(b, testConfig(srv.addr)), Config{})
	if _, _, err := c.LookupTXT(context.Background(), "example.com"); err != nil {
		b.Fatal(err)
	}
	return c
}
