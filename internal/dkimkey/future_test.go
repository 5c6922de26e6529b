package dkimkey

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
)

const futureZone = `$ORIGIN example.com.
@               SOA   ns hostmaster 1 3600 600 86400 300
sel._domainkey  TXT   "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
`

// TestKeyResolverHonoursCacheOnly: a KeyResolver honours cache-only mode
// exactly when the resolver it wraps does.
func TestKeyResolverHonoursCacheOnly(t *testing.T) {
	t.Parallel()
	zone, err := dnscache.LoadZone(strings.NewReader(futureZone), "", "future.zone")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    dnscache.Resolver
		want bool
	}{
		{"zone", &KeyResolver{Resolver: zone}, true},
		{"zone, by value", KeyResolver{Resolver: zone, Keys: NewCache(0)}, true},
		{"fake resolver", &KeyResolver{Resolver: &dnstest.Resolver{}}, false},
		{"nothing wrapped", &KeyResolver{}, false},
	} {
		if got := dnscache.HonoursCacheOnly(tc.r); got != tc.want {
			t.Errorf("%s: HonoursCacheOnly = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestStart: a key the resolver has in memory is complete when Start
// returns; with any other resolver the lookup runs in the background,
// counted by the WaitGroup; both give the key, and the same errors.
func TestStart(t *testing.T) {
	t.Parallel()
	zone, err := dnscache.LoadZone(strings.NewReader(futureZone), "", "future.zone")
	if err != nil {
		t.Fatal(err)
	}
	fake := &dnstest.Resolver{TXT: map[string][]string{
		"sel._domainkey.example.com": {"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="},
	}}
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		r         dnscache.Resolver
		cacheOnly bool
	}{{"zone", &KeyResolver{Resolver: zone}, true}, {"fake resolver", fake, false}} {
		var wg sync.WaitGroup
		f := Start(ctx, tc.r, "sel", "example.com", &wg)
		if (f.done == nil) != tc.cacheOnly {
			t.Errorf("%s: complete at Start = %v, want %v", tc.name, f.done == nil, tc.cacheOnly)
		}
		wg.Wait()
		if !f.Wait(ctx) {
			t.Fatalf("%s: Wait reports the lookup unfinished", tc.name)
		}
		if k, err := f.Result(); err != nil || k.Type != "ed25519" {
			t.Errorf("%s: key %+v, %v", tc.name, k, err)
		}
		f = Start(ctx, tc.r, "nope", "example.com", &wg)
		wg.Wait()
		if _, err := f.Result(); !f.Wait(ctx) || !errors.Is(err, ErrNoKey) {
			t.Errorf("%s: missing key: %v, want ErrNoKey", tc.name, err)
		}
	}
}
