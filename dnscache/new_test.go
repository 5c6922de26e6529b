package dnscache

import (
	"context"
	"reflect"
	"testing"
)

// New wires zone file, cache and client: zone names never go upstream,
// others are cached.
func TestNew(t *testing.T) {
	t.Parallel()
	srv := startServer(t, echoTXT(t))
	cfg := testConfig(srv.addr)
	cfg.ZoneFile = overrideZone
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	txt, res, err := r.LookupTXT(ctx, "_dmarc.example.com")
	if err != nil || !reflect.DeepEqual(txt, []string{"v=DMARC1; p=reject"}) || !res.Authentic {
		t.Errorf("zone name: %q, %v, %v", txt, res, err)
	}
	for range 3 {
		if txt, _, err := r.LookupTXT(ctx, "example.net"); err != nil || txt[0] != "ok" {
			t.Fatalf("upstream name: %q, %v", txt, err)
		}
	}
	if n := srv.queries(); n != 1 {
		t.Errorf("%d upstream queries, want 1", n)
	}
	s, ok := r.(interface{ Stats() Stats })
	if !ok {
		t.Fatalf("%T has no Stats method", r)
	}
	if got := s.Stats(); got.Hits != 2 || got.Misses != 1 || got.Queries != 1 || got.Entries != 1 {
		t.Errorf("stats = %+v", got)
	}
}

func TestNewWithoutCache(t *testing.T) {
	t.Parallel()
	srv := startServer(t, echoTXT(t))
	cfg := testConfig(srv.addr)
	cfg.CacheSize = -1
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, _, err := r.LookupTXT(context.Background(), "example.net"); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.queries(); n != 2 {
		t.Errorf("%d upstream queries, want 2", n)
	}
	if s := r.(interface{ Stats() Stats }).Stats(); s != (Stats{}) {
		t.Errorf("stats without a cache = %+v", s)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{Servers: []string{"ns.example.com"}}); err == nil {
		t.Error("bad server: no error")
	}
	if _, err := New(Config{Servers: []string{"127.0.0.1"}, ZoneFile: "testdata/missing.zone"}); err == nil {
		t.Error("missing zone file: no error")
	}
}
