package dnstest_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
)

func TestServe(t *testing.T) {
	long := strings.Repeat("k", 600)
	fake := &dnstest.Resolver{
		TXT:  map[string][]string{"sel._domainkey.example.com": {"v=DKIM1; p=" + long}},
		A:    map[string][]string{"mx.example.com": {"192.0.2.25"}},
		AAAA: map[string][]string{"mx.example.com": {"2001:db8::25"}},
		MX:   map[string][]dnscache.MX{"example.com": {{Host: "mx.example.com", Pref: 10}}},
		PTR: map[string][]string{
			dnscache.ReverseName(netip.MustParseAddr("192.0.2.25")):   {"mx.example.com"},
			dnscache.ReverseName(netip.MustParseAddr("2001:db8::25")): {"mx6.example.com"},
		},
		Fail: map[string]dnstest.Failure{"broken.example.com": dnstest.ServFail},
	}
	addr := dnstest.Serve(t, fake)
	c, err := dnscache.NewClient(dnscache.Config{Servers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	txt, _, err := c.LookupTXT(ctx, "sel._domainkey.example.com")
	if err != nil || len(txt) != 1 || txt[0] != "v=DKIM1; p="+long {
		t.Errorf("TXT: %v %v", txt, err)
	}
	if a, _, err := c.LookupA(ctx, "mx.example.com"); err != nil || len(a) != 1 || a[0].String() != "192.0.2.25" {
		t.Errorf("A: %v %v", a, err)
	}
	if a, _, err := c.LookupAAAA(ctx, "mx.example.com"); err != nil || len(a) != 1 || a[0].String() != "2001:db8::25" {
		t.Errorf("AAAA: %v %v", a, err)
	}
	if mx, _, err := c.LookupMX(ctx, "example.com"); err != nil || len(mx) != 1 || mx[0].Host != "mx.example.com" {
		t.Errorf("MX: %v %v", mx, err)
	}
	for ip, want := range map[string]string{"192.0.2.25": "mx.example.com", "2001:db8::25": "mx6.example.com"} {
		if p, _, err := c.LookupPTR(ctx, netip.MustParseAddr(ip)); err != nil || len(p) != 1 || p[0] != want {
			t.Errorf("PTR %s: %v %v", ip, p, err)
		}
	}
	if _, _, err := c.LookupTXT(ctx, "nowhere.example.com"); !errors.Is(err, dnscache.ErrNXDomain) {
		t.Errorf("NXDOMAIN: %v", err)
	}
	if _, _, err := c.LookupTXT(ctx, "mx.example.com"); !errors.Is(err, dnscache.ErrNoData) {
		t.Errorf("NODATA: %v", err)
	}
	if _, _, err := c.LookupTXT(ctx, "broken.example.com"); !errors.Is(err, dnscache.ErrTemporary) {
		t.Errorf("SERVFAIL: %v", err)
	}
}

// TestServeTimeoutIsSilent: a Timeout failure gets no reply, so the client
// times out (as it would against a dead authoritative server).
func TestServeTimeoutIsSilent(t *testing.T) {
	addr := dnstest.Serve(t, &dnstest.Resolver{Fail: map[string]dnstest.Failure{"slow.example.com": dnstest.Timeout}})
	c, err := dnscache.NewClient(dnscache.Config{Servers: []string{addr}, Timeout: 200 * time.Millisecond, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err = c.LookupTXT(context.Background(), "slow.example.com")
	var de *net.DNSError
	if !errors.Is(err, dnscache.ErrTemporary) || !errors.As(err, &de) || !de.IsTimeout {
		t.Errorf("got %v, want a temporary failure that timed out", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("answered after %v: the server replied", d)
	}
}
