package iprev

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	rev := func(s string) string { return dnscache.ReverseName(netip.MustParseAddr(s)) }
	r := &dnstest.Resolver{
		PTR: map[string][]string{
			rev("192.0.2.1"):    {"mail.example.com."},
			rev("192.0.2.2"):    {"liar.example.com."},
			rev("192.0.2.3"):    {"slow.example.com."},
			rev("192.0.2.4"):    {"gone.example.com.", "mail4.example.com."},
			rev("2001:db8::25"): {"mail6.example.com."},
			rev("192.0.2.6"):    {"gone.example.com."},
		},
		A: map[string][]string{
			"mail.example.com":  {"192.0.2.1"},
			"liar.example.com":  {"198.51.100.1"},
			"mail4.example.com": {"192.0.2.99", "192.0.2.4"},
		},
		AAAA: map[string][]string{"mail6.example.com": {"2001:db8::25"}},
		Fail: map[string]dnstest.Failure{
			"slow.example.com": dnstest.Timeout,
			rev("192.0.2.5"):   dnstest.ServFail,
		},
	}
	for _, tc := range []struct {
		ip     string
		result verify.Status
		name   string
		err    error
	}{
		{"192.0.2.1", verify.StatusPass, "mail.example.com", nil},
		{"::ffff:192.0.2.1", verify.StatusPass, "mail.example.com", nil},
		{"2001:db8::25", verify.StatusPass, "mail6.example.com", nil},
		{"192.0.2.4", verify.StatusPass, "mail4.example.com", nil},        // the second name confirms
		{"192.0.2.2", verify.StatusFail, "liar.example.com", ErrMismatch}, // forward gives another address
		{"192.0.2.6", verify.StatusFail, "gone.example.com", ErrMismatch}, // forward is NXDOMAIN
		{"192.0.2.3", verify.StatusTemperror, "slow.example.com", ErrDNS}, // forward times out
		{"192.0.2.5", verify.StatusTemperror, "", ErrDNS},                 // PTR SERVFAIL
		{"192.0.2.7", verify.StatusPermerror, "", ErrNoPTR},               // no PTR
	} {
		got := Verify(context.Background(), r, netip.MustParseAddr(tc.ip))
		if got.Status != tc.result || got.Name != tc.name || !errors.Is(got.Err, tc.err) || (tc.err == nil) != (got.Err == nil) {
			t.Errorf("Verify(%s) = %s %q %v, want %s %q %v", tc.ip, got.Status, got.Name, got.Err, tc.result, tc.name, tc.err)
		}
	}
	if got := Verify(context.Background(), r, netip.Addr{}); got.Status != verify.StatusNone || !errors.Is(got.Err, ErrNoAddress) {
		t.Errorf("no address: %+v", got)
	}
}

// TestVerifyBoundsNames: an address publishing many PTR names costs at
// most MaxNames forward lookups.
func TestVerifyBoundsNames(t *testing.T) {
	t.Parallel()
	ip := netip.MustParseAddr("192.0.2.9")
	var names []string
	for i := 0; i < 50; i++ {
		names = append(names, "n"+string(rune('a'+i%26))+string(rune('a'+i/26))+".example.com.")
	}
	r := &dnstest.Resolver{PTR: map[string][]string{dnscache.ReverseName(ip): names}}
	got := Verify(context.Background(), r, ip)
	if got.Status != verify.StatusFail || len(got.Names) != MaxNames || len(r.Queries()) != 1+MaxNames {
		t.Errorf("result %s, %d names, %d queries", got.Status, len(got.Names), len(r.Queries()))
	}
}
