package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
)

// TestDNSServer: `milterload dns` answers from its zone after the delay,
// writes the counts on SIGUSR1 (and starts a new count with --reset), and
// writes them again when it stops.
func TestDNSServer(t *testing.T) {
	dir := t.TempDir()
	zone := filepath.Join(dir, "bench.zone")
	if err := os.WriteFile(zone, []byte("$ORIGIN example.com.\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 300\n_dmarc TXT \"v=DMARC1; p=reject\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	counts := filepath.Join(dir, "counts.json")
	c := dnsConfig{zone: zone, listen: "127.0.0.1:0", counts: counts, ttl: 300, reset: true, maxTime: time.Minute,
		delay: mustDelay(t, "30ms")}
	sig := make(chan os.Signal)
	addrc := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	wrote := make(chan struct{})
	go func() {
		done <- runDNS(ctx, c, &bytes.Buffer{}, &stderr, sig, func(a string) { addrc <- a }, func() { wrote <- struct{}{} })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatal(err)
	}
	r, err := dnscache.NewClient(dnscache.Config{Servers: []string{addr}, Timeout: 5 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if txt, _, err := r.LookupTXT(ctx, "_dmarc.example.com"); err != nil || len(txt) != 1 {
		t.Fatalf("TXT %q %v", txt, err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("answered after %v, before the 30ms delay", d)
	}
	_, _, _ = r.LookupTXT(ctx, "_dmarc.other.example.com")
	read := func() dnsCounts {
		t.Helper()
		var got dnsCounts
		data, err := os.ReadFile(counts)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatalf("%v: %s", err, data)
		}
		return got
	}
	sig <- syscall.SIGUSR1
	<-wrote
	if got := read(); got.Total != 2 {
		t.Errorf("first count: total %d, want 2 (%+v)", got.Total, got)
	}
	sig <- syscall.SIGUSR1
	<-wrote
	if got := read(); got.Total != 0 {
		t.Errorf("after a reset, total %d", got.Total)
	}
	if _, _, err := r.LookupTXT(ctx, "_dmarc.example.com"); err != nil {
		t.Error(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := read()
	if got.Total != 1 || len(got.Queries) != 1 || got.Queries[0].Name != "_dmarc.example.com" || got.Queries[0].Type != "TXT" {
		t.Errorf("final counts %+v", got)
	}
}

func mustDelay(t *testing.T, s string) dnstest.Delay {
	t.Helper()
	d, err := dnstest.ParseDelay(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDNSMainRefuses(t *testing.T) {
	for _, args := range [][]string{
		{},                                 // no zone
		{"--zone", "x", "--delay", "fast"}, // bad delay
		{"--zone", "x", "--ttl", "0"},
		{"--zone", "x", "extra"},
	} {
		if err := dnsMain(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("dns %q accepted", args)
		}
	}
}
