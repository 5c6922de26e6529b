package arc

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
// and says so (dnscache.HonoursCacheOnly), a Validator fetches them on the
// caller's goroutine and starts none; with a cold cache, or a resolver that
// does not honour cache-only mode, the lookups run in the background as before.
// The result is the same every way. Not parallel: it counts the goroutines the
// whole program creates.
func TestWarmCacheStartsNoGoroutine(t *testing.T) {
	records := newResolver()
	msg := testMessage
	for _, d := range []string{"a.example", "b.example"} {
		msg = mustSeal(t, records, newEd25519Sealer(t, records, d), msg)
	}
	cache, err := dnscache.New(dnscache.Config{Servers: []string{dnstest.Serve(t, records)}})
	if err != nil {
		t.Fatal(err)
	}
	keyRes := &dkimkey.KeyResolver{Resolver: cache, Keys: dkimkey.NewCache(0)}
	header, body := splitMessage(t, msg)

	// run validates the message and returns its result and the number of
	// goroutines started meanwhile.
	run := func(r dnscache.Resolver) (Result, uint64) {
		t.Helper()
		before := goroutines.Created()
		v := NewValidator(context.Background(), r, header, nil)
		v.Write(body)
		res := v.Close()
		return res, goroutines.Created() - before
	}

	want, _ := run(records)
	if want.Status != verify.StatusPass || want.Instances != 2 {
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

// TestNoSealBodyHash: without a seal to make, the whole body's relaxed hash
// is not computed (BodyHash is nil) and validation is unchanged; by default
// it is, and it is the hash a Sealer puts in its AMS bh=.
func TestNoSealBodyHash(t *testing.T) {
	t.Parallel()
	records := newResolver()
	msg := mustSeal(t, records, newEd25519Sealer(t, records, "a.example"), testMessage)
	header, body := splitMessage(t, msg)
	run := func(opts *Options) (Result, []byte) {
		v := NewValidator(context.Background(), records, header, opts)
		v.Write(body)
		return v.Close(), v.BodyHash()
	}
	want, full := run(nil)
	if want.Status != verify.StatusPass || len(full) != 32 {
		t.Fatalf("default: %+v, body hash %x", want, full)
	}
	got, none := run(&Options{NoSealBodyHash: true})
	if !reflect.DeepEqual(got, want) || none != nil {
		t.Fatalf("NoSealBodyHash: %+v, body hash %x; want %+v and none", got, none, want)
	}
}
