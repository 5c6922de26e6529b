package dnstest_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
)

func TestParseDelay(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want dnstest.Delay
		bad  bool
	}{
		{in: "20ms", want: dnstest.Delay{Min: 20 * time.Millisecond, Max: 20 * time.Millisecond}},
		{in: "5ms-80ms", want: dnstest.Delay{Min: 5 * time.Millisecond, Max: 80 * time.Millisecond}},
		{in: "0s", want: dnstest.Delay{}},
		{in: "80ms-5ms", bad: true},
		{in: "-5ms", bad: true},
		{in: "2m", bad: true},
		{in: "fast", bad: true},
		{in: "5ms-", bad: true},
	} {
		got, err := dnstest.ParseDelay(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseDelay(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDelay(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, err := dnstest.ParseDelay(got.String()); err != nil || back != got {
			t.Errorf("ParseDelay(%q.String() = %q) = %v, %v", tc.in, got.String(), back, err)
		}
	}
}

func loadZone(t *testing.T, text string) *dnscache.Zone {
	t.Helper()
	z, err := dnscache.LoadZone(strings.NewReader(text), "example.com.", "test.zone")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// TestDelayServer: answers from a zone after the delay, the delays of
// concurrent queries overlap, negative answers are NXDOMAIN, and every
// query is counted by type and name.
func TestDelayServer(t *testing.T) {
	z := loadZone(t, "@ 300 SOA ns hostmaster 1 3600 600 86400 300\n_dmarc 300 TXT \"v=DMARC1; p=reject\"\n@ 300 A 192.0.2.1\n")
	s := &dnstest.DelayServer{Resolver: z, Delay: dnstest.Delay{Min: 100 * time.Millisecond, Max: 100 * time.Millisecond}}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := dnscache.NewClient(dnscache.Config{Servers: []string{s.Addr()}, Timeout: 5 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if txt, _, err := c.LookupTXT(ctx, "_dmarc.example.com"); err != nil || len(txt) != 1 || txt[0] != "v=DMARC1; p=reject" {
				t.Errorf("TXT: %q %v", txt, err)
			}
		}()
	}
	wg.Wait()
	// Four queries in parallel: at least one delay, well under four.
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("answered after %v, before the delay", d)
	}
	if _, _, err := c.LookupTXT(ctx, "_dmarc.nowhere.example.com"); !errors.Is(err, dnscache.ErrNXDomain) {
		t.Errorf("NXDOMAIN: %v", err)
	}
	if a, _, err := c.LookupA(ctx, "example.com"); err != nil || len(a) != 1 {
		t.Errorf("A: %v %v", a, err)
	}
	counts, total := s.Counts()
	want := []dnstest.QueryCount{
		{Type: "TXT", Name: "_dmarc.example.com", Count: 4},
		{Type: "TXT", Name: "_dmarc.nowhere.example.com", Count: 1},
		{Type: "A", Name: "example.com", Count: 1},
	}
	if total != 6 || len(counts) != len(want) {
		t.Fatalf("counts %v (total %d), want %v", counts, total, want)
	}
	for i := range want {
		if counts[i] != want[i] {
			t.Errorf("counts[%d] = %v, want %v", i, counts[i], want[i])
		}
	}
	s.Reset()
	if counts, total := s.Counts(); total != 0 || len(counts) != 0 {
		t.Errorf("after Reset: %v %d", counts, total)
	}
}

// TestDelayServerRange: drawn delays stay within the range.
func TestDelayServerRange(t *testing.T) {
	z := loadZone(t, "@ 300 SOA ns hostmaster 1 3600 600 86400 300\n@ 300 A 192.0.2.1\n")
	s := &dnstest.DelayServer{Resolver: z, Delay: dnstest.Delay{Min: 10 * time.Millisecond, Max: 30 * time.Millisecond}, Seed: 1}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := dnscache.NewClient(dnscache.Config{Servers: []string{s.Addr()}, Timeout: 5 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		start := time.Now()
		if _, _, err := c.LookupA(context.Background(), "example.com"); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 10*time.Millisecond {
			t.Errorf("answered after %v, under the minimum", d)
		}
	}
}

func TestDelayServerLoopbackOnly(t *testing.T) {
	s := &dnstest.DelayServer{Resolver: &dnstest.Resolver{}}
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:53", ":0", "localhost"} {
		if err := s.Start(addr); err == nil {
			s.Close()
			t.Errorf("Start(%q) accepted", addr)
		}
	}
}
