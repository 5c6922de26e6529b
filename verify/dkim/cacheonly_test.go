package dkim

import (
	"context"
	"reflect"
	"testing"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/dkimkey"
	"github.com/authmilter/authmilter/internal/testsupport/goroutines"
	"github.com/authmilter/authmilter/verify"
)

// TestWarmCacheStartsNoGoroutine: with a resolver that has the keys in memory
// and says so (dnscache.HonoursCacheOnly), a Verifier fetches them on the
// caller's goroutine and starts none; with a cold cache, or a resolver that
// does not honour cache-only mode, the lookups run in the background as before.
// The results are the same every way. Not parallel: it counts the goroutines
// the whole program creates.
func TestWarmCacheStartsNoGoroutine(t *testing.T) {
	k := testKeys()
	checkNoLeak(t)
	msg := testSign(t, testMessage(3000), signSpec{key: k.rsa2048, selector: "a", relaxed: true})
	msg = testSign(t, msg, signSpec{key: k.ed, selector: "b"})
	records := resolverFor(map[string]string{
		"a._domainkey.example.com": keyRecord(k.rsa2048, ""),
		"b._domainkey.example.com": keyRecord(k.ed, ""),
	})
	cache, err := dnscache.New(dnscache.Config{Servers: []string{dnstest.Serve(t, records)}})
	if err != nil {
		t.Fatal(err)
	}
	keyRes := &dkimkey.KeyResolver{Resolver: cache, Keys: dkimkey.NewCache(0)}
	header, body := headerOf(t, msg)

	// run verifies the message and returns its results and the number of
	// goroutines started meanwhile.
	run := func(r dnscache.Resolver) ([]Signature, uint64) {
		t.Helper()
		before := goroutines.Created()
		v := NewVerifier(context.Background(), r, header, nil)
		if _, err := v.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
		sigs := v.Close()
		return sigs, goroutines.Created() - before
	}

	want, _ := run(records)
	if len(want) != 2 || want[0].Status != verify.StatusPass || want[1].Status != verify.StatusPass {
		t.Fatalf("fake resolver: %+v", want)
	}
	for _, step := range []struct {
		name       string
		r          dnscache.Resolver
		goroutines bool // some were started
	}{
		{"cold cache", keyRes, true},
		{"warm cache", keyRes, false},
		{"warm cache, without KeyResolver", cache, false},
		{"resolver without cache-only mode", records, true},
	} {
		got, n := run(step.r)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, want %+v", step.name, got, want)
		}
		if (n > 0) != step.goroutines {
			t.Errorf("%s: %d goroutines started", step.name, n)
		}
	}
}
