package dnscache

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// wantNotCached checks that err is the error of a cache-only lookup that
// missed: a temporary *net.DNSError that also unwraps to ErrNotCached, and that
// p recorded the miss.
func wantNotCached(t *testing.T, err error, p *CacheOnly) {
	t.Helper()
	wantErr(t, err, ErrTemporary, false)
	if !errors.Is(err, ErrNotCached) {
		t.Fatalf("error %v: errors.Is(err, ErrNotCached) is false", err)
	}
	if !p.Missed() {
		t.Fatal("cache-only lookup did not record the miss")
	}
}

// TestCacheOnlyWarmCache: in cache-only mode a Cache answers from its fresh
// entries exactly as a normal lookup does, positive and negative, without a
// query.
func TestCacheOnlyWarmCache(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		rcode     int
		answer    []string
		authority []string
		kind      error // nil: an answer
	}{
		{"answer", dns.RcodeSuccess, []string{`example.com. 300 IN TXT "v=spf1 -all"`}, nil, nil},
		{"NXDOMAIN", dns.RcodeNameError, nil, []string{soaRR(3600, 300)}, ErrNXDomain},
		{"NODATA", dns.RcodeSuccess, nil, []string{soaRR(3600, 300)}, ErrNoData},
		{"temporary failure, remembered", dns.RcodeServerFailure, nil, nil, ErrTemporary},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, fixed(t, tc.rcode, tc.answer, tc.authority...))
			c, _ := newTestCache(t, srv, nil)
			want, _, wantE := c.LookupTXT(context.Background(), "example.com")

			ctx, p := WithCacheOnly(context.Background())
			got, _, err := c.LookupTXT(ctx, "Example.COM.")
			if p.Missed() {
				t.Fatalf("cache-only lookup missed a cached answer (%v)", err)
			}
			if tc.kind == nil {
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("cache-only lookup: %q, %v; want %q", got, err, want)
				}
			} else {
				wantErr(t, err, tc.kind, false)
				if errors.Is(err, ErrNotCached) || err.Error() != wantE.Error() {
					t.Fatalf("cache-only lookup: %v, want %v", err, wantE)
				}
			}
			if n := srv.queries(); n != 1 {
				t.Errorf("%d queries, want 1", n)
			}
			if s := c.Stats(); s.Hits != 1 || s.Misses != 1 || s.CacheOnlyMisses != 0 {
				t.Errorf("stats = %+v, want 1 hit, 1 miss", s)
			}
		})
	}
}

// TestCacheOnlyColdCache: a cache-only lookup of a name not cached fails at
// once, records the miss, asks nothing upstream and counts no miss; the normal
// lookup after it does, and a later cache-only lookup is answered.
func TestCacheOnlyColdCache(t *testing.T) {
	t.Parallel()
	srv := startServer(t, fixed(t, dns.RcodeSuccess, []string{`example.com. 300 IN TXT "one"`}))
	c, clock := newTestCache(t, srv, nil)

	ctx, p := WithCacheOnly(context.Background())
	_, _, err := c.LookupTXT(ctx, "example.com")
	wantNotCached(t, err, p)
	if n := srv.queries(); n != 0 {
		t.Fatalf("cache-only lookup sent %d queries", n)
	}
	if s := c.Stats(); s.Misses != 0 || s.CacheOnlyMisses != 1 || s.Queries != 0 {
		t.Errorf("after the cache-only lookup: stats = %+v, want 1 cache-only miss only", s)
	}

	if txt, _, err := c.LookupTXT(context.Background(), "example.com"); err != nil || !reflect.DeepEqual(txt, []string{"one"}) {
		t.Fatalf("normal lookup: %q, %v", txt, err)
	}
	if s := c.Stats(); s.Misses != 1 || s.Queries != 1 || s.Hits != 0 {
		t.Errorf("after the lookup: stats = %+v, want 1 miss, 1 query", s)
	}

	ctx, p = WithCacheOnly(context.Background())
	if txt, _, err := c.LookupTXT(ctx, "example.com"); err != nil || p.Missed() || !reflect.DeepEqual(txt, []string{"one"}) {
		t.Fatalf("cache-only lookup after the lookup: %q, %v, missed %v", txt, err, p.Missed())
	}

	// Expired: a cache-only lookup does not refresh it.
	clock.Advance(301 * time.Second)
	ctx, p = WithCacheOnly(context.Background())
	_, _, err = c.LookupTXT(ctx, "example.com")
	wantNotCached(t, err, p)
	if n := srv.queries(); n != 1 {
		t.Errorf("%d queries, want 1", n)
	}
}

// TestCacheOnlyDuringFlight: while a lookup waits for upstream, a cache-only
// lookup of the same question misses at once instead of joining the flight.
func TestCacheOnlyDuringFlight(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		<-release
		respond(t, w, r, dns.RcodeSuccess, []string{`example.com. 300 IN TXT "one"`})
	})
	c, _ := newTestCache(t, srv, func(cfg *Config) { cfg.Timeout = 5 * time.Second })
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, _, err := c.LookupTXT(context.Background(), "example.com"); err != nil {
			t.Error(err)
		}
	})
	for srv.queries() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, p := WithCacheOnly(context.Background())
	start := time.Now()
	_, _, err := c.LookupTXT(ctx, "example.com")
	wantNotCached(t, err, p)
	if d := time.Since(start); d > time.Second {
		t.Errorf("cache-only lookup waited %v for the flight", d)
	}
	close(release)
	wg.Wait()
	if n := srv.queries(); n != 1 {
		t.Errorf("%d queries, want 1", n)
	}
}

// TestCacheOnlyClient: a Client in cache-only mode sends nothing.
func TestCacheOnlyClient(t *testing.T) {
	t.Parallel()
	srv := startServer(t, echoTXT(t))
	c := newTestClient(t, testConfig(srv.addr))
	if !HonoursCacheOnly(c) {
		t.Fatal("HonoursCacheOnly(Client) is false")
	}
	ctx, p := WithCacheOnly(context.Background())
	_, _, err := c.LookupTXT(ctx, "example.com")
	wantNotCached(t, err, p)
	_, _, err = c.LookupPTR(ctx, netip.MustParseAddr("192.0.2.1"))
	wantNotCached(t, err, p)
	if n := srv.queries(); n != 0 {
		t.Fatalf("Client sent %d queries in cache-only mode", n)
	}
	if _, _, err := c.LookupTXT(context.Background(), "example.com"); err != nil {
		t.Fatalf("normal lookup: %v", err)
	}
}

// TestCacheOnlyOverlay: the zone answers a cache-only lookup from memory; names
// outside it are looked up in the cache behind it, from memory only.
func TestCacheOnlyOverlay(t *testing.T) {
	t.Parallel()
	srv := startServer(t, echoTXT(t))
	c, _ := newTestCache(t, srv, nil)
	r := Overlay(loadTestZone(t), c)
	if !HonoursCacheOnly(r) {
		t.Fatal("HonoursCacheOnly(Overlay over a Cache) is false")
	}

	ctx, p := WithCacheOnly(context.Background())
	txt, _, err := r.LookupTXT(ctx, "_dmarc.example.com")
	if err != nil || p.Missed() || !reflect.DeepEqual(txt, []string{"v=DMARC1; p=reject"}) {
		t.Fatalf("zone name: %q, %v, missed %v", txt, err, p.Missed())
	}
	_, _, err = r.LookupTXT(ctx, "nope.example.com")
	wantErr(t, err, ErrNXDomain, false)
	if p.Missed() {
		t.Fatal("cache-only lookup missed on the zone's NXDOMAIN")
	}

	_, _, err = r.LookupTXT(ctx, "example.net")
	wantNotCached(t, err, p)
	ctx, p = WithCacheOnly(context.Background())
	_, _, err = r.LookupTXT(ctx, "out.example.com") // CNAME out of the zone
	wantNotCached(t, err, p)
	if n := srv.queries(); n != 0 {
		t.Fatalf("%d queries in cache-only mode", n)
	}

	for _, name := range []string{"example.net", "out.example.com"} {
		if _, _, err := r.LookupTXT(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	ctx, p = WithCacheOnly(context.Background())
	for _, name := range []string{"example.net", "out.example.com"} {
		if txt, _, err := r.LookupTXT(ctx, name); err != nil || !reflect.DeepEqual(txt, []string{"ok"}) {
			t.Errorf("%s after a lookup: %q, %v", name, txt, err)
		}
	}
	if p.Missed() || srv.queries() != 2 {
		t.Errorf("warm cache-only lookup: missed %v, %d queries (want 2)", p.Missed(), srv.queries())
	}
}

// TestHonoursCacheOnly: the resolvers of this package honour cache-only mode;
// one from elsewhere does not, nor an Overlay in front of it.
func TestHonoursCacheOnly(t *testing.T) {
	t.Parallel()
	srv := startServer(t, echoTXT(t))
	z := loadTestZone(t)
	foreign := opaque{newTestClient(t, testConfig(srv.addr))}
	newResolver := func(cfg Config) Resolver {
		r, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		r    Resolver
		want bool
	}{
		{"Zone", z, true},
		{"New", newResolver(testConfig(srv.addr)), true},
		{"New without cache", newResolver(Config{Servers: []string{srv.addr}, CacheSize: -1}), true},
		{"New with a zone file", newResolver(Config{Servers: []string{srv.addr}, ZoneFile: overrideZone}), true},
		{"foreign", foreign, false},
		{"Overlay over a foreign resolver", Overlay(z, foreign), false},
	} {
		if got := HonoursCacheOnly(tc.r); got != tc.want {
			t.Errorf("%s: HonoursCacheOnly = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// plainResolver hides a Resolver's HonoursCacheOnly method.
type plainResolver struct{ Resolver }

// TestFromMemory: work runs with a cache-only context, and FromMemory reports
// whether the cache answered all of it; a resolver without cache-only mode
// is not asked at all.
func TestFromMemory(t *testing.T) {
	t.Parallel()
	srv := startServer(t, fixed(t, dns.RcodeSuccess, []string{`example.com. 300 IN TXT "v=spf1 -all"`}))
	c, _ := newTestCache(t, srv, nil)
	ctx := context.Background()
	lookup := func(r Resolver, ran *bool) func(context.Context) {
		return func(ctx context.Context) { *ran = true; _, _, _ = r.LookupTXT(ctx, "example.com") }
	}
	var ran bool
	if FromMemory(ctx, c, lookup(c, &ran)) || !ran {
		t.Fatalf("cold cache: FromMemory true, or work not run (%v)", ran)
	}
	_, _, _ = c.LookupTXT(ctx, "example.com")
	ran = false
	if !FromMemory(ctx, c, lookup(c, &ran)) || !ran {
		t.Fatalf("warm cache: FromMemory false, or work not run (%v)", ran)
	}
	ran = false
	p := plainResolver{c}
	if FromMemory(ctx, p, lookup(p, &ran)) || ran {
		t.Fatalf("resolver without cache-only mode: FromMemory true, or work run (%v)", ran)
	}
}
