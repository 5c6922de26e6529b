package spf_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/spf"
)

// Records and names built to hurt: each must end in a defined result,
// quickly, with a bounded number of queries.
func TestHostile(t *testing.T) {
	t.Parallel()
	longLocal := strings.Repeat("x.", 40) + "x" // 81 octets, 41 labels
	tests := []struct {
		name   string
		txt    map[string][]string
		mutate func(*dnstest.Resolver)
		sender string
		opts   *spf.Options
		result verify.Status
		err    error
		maxQ   int // most queries allowed
	}{
		{
			name:   "include-self",
			txt:    map[string][]string{"example.com": {"v=spf1 include:example.com -all"}},
			result: verify.StatusPermerror, err: spf.ErrTooManyLookups, maxQ: 12,
		},
		{
			name: "mutual-redirect",
			txt: map[string][]string{
				"example.com":   {"v=spf1 redirect=b.example.net"},
				"b.example.net": {"v=spf1 redirect=example.com"},
			},
			result: verify.StatusPermerror, err: spf.ErrTooManyLookups, maxQ: 12,
		},
		{
			name: "include-redirect-cycle-with-high-limit",
			txt: map[string][]string{
				"example.com":   {"v=spf1 include:b.example.net -all"},
				"b.example.net": {"v=spf1 redirect=example.com"},
			},
			opts:   &spf.Options{MaxLookups: 1 << 20},
			result: verify.StatusPermerror, err: spf.ErrTooManyLookups, maxQ: 40,
		},
		{
			name:   "long-include-chain",
			txt:    chain(100),
			result: verify.StatusPermerror, err: spf.ErrTooManyLookups, maxQ: 12,
		},
		{
			name:   "10000-octets-of-ip4",
			txt:    map[string][]string{"example.com": {"v=spf1 " + repeatTerms("ip4:198.51.100.%d", 10000) + " -all"}},
			result: verify.StatusFail, maxQ: 1,
		},
		{
			name:   "10000-octets-of-a",
			txt:    map[string][]string{"example.com": {"v=spf1 " + repeatTerms("a:h%d.example.com", 10000) + " -all"}},
			opts:   &spf.Options{MaxVoidLookups: -1},
			result: verify.StatusPermerror, err: spf.ErrTooManyLookups, maxQ: 11,
		},
		{
			name:   "10000-octets-of-garbage",
			txt:    map[string][]string{"example.com": {"v=spf1 " + strings.Repeat("%{", 5000)}},
			result: verify.StatusPermerror, err: spf.ErrSyntax, maxQ: 1,
		},
		{
			name:   "10000-octet-term",
			txt:    map[string][]string{"example.com": {"v=spf1 a:" + strings.Repeat("a", 9990) + ".com -all"}},
			result: verify.StatusFail, maxQ: 2, // cut to "com" (§7.3)
		},
		{
			name:   "10000-octet-domain-spec-of-macros",
			txt:    map[string][]string{"example.com": {"v=spf1 exists:" + strings.Repeat("%{s}.", 1995) + "example.com -all"}},
			result: verify.StatusFail, maxQ: 1,
		},
		{
			name:   "huge-transformer-digits",
			txt:    map[string][]string{"example.com": {"v=spf1 exists:%{d" + strings.Repeat("9", 5000) + "r}.example.com -all"}},
			result: verify.StatusFail, maxQ: 2,
		},
		{
			name:   "255-label-name-via-macro",
			txt:    map[string][]string{"example.com": {"v=spf1 exists:" + strings.Repeat("%{l}.", 7) + "example.com -all"}},
			sender: longLocal + "@example.com",
			result: verify.StatusFail, maxQ: 2,
		},
		{
			name:   "exp-of-10000-octets",
			txt:    map[string][]string{"example.com": {"v=spf1 -all exp=e.example.com"}, "e.example.com": {strings.Repeat("%{s} ", 2000)}},
			result: verify.StatusFail, maxQ: 2,
		},
		{
			name:   "1000-mx",
			txt:    map[string][]string{"example.com": {"v=spf1 mx:many.example.net -all"}},
			mutate: func(z *dnstest.Resolver) { z.MX["many.example.net"] = manyMX(1000) },
			result: verify.StatusPermerror, err: spf.ErrTooManyMX, maxQ: 2,
		},
		{
			name: "1000-ptr",
			txt:  map[string][]string{"example.com": {"v=spf1 ptr ptr ptr -all"}},
			mutate: func(z *dnstest.Resolver) {
				rev := dnscache.ReverseName(netip.MustParseAddr("192.0.2.1"))
				for i := range 1000 {
					z.PTR[rev] = append(z.PTR[rev], fmt.Sprintf("h%d.example.com", i))
				}
			},
			result: verify.StatusFail, maxQ: 12,
		},
		{
			name: "cname-loop",
			txt:  map[string][]string{"example.com": {"v=spf1 a:loop.example.net -all"}},
			mutate: func(z *dnstest.Resolver) {
				z.CNAME = map[string]string{"loop.example.net": "loop2.example.net", "loop2.example.net": "loop.example.net"}
			},
			result: verify.StatusTemperror, err: spf.ErrDNS, maxQ: 2,
		},
		{
			name:   "thousands-of-modifiers",
			txt:    map[string][]string{"example.com": {"v=spf1 " + repeatTerms("x%d=%%{d}", 10000) + " -all"}},
			result: verify.StatusFail, maxQ: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			z := zone(tt.txt)
			if tt.mutate != nil {
				tt.mutate(z)
			}
			sender := tt.sender
			if sender == "" {
				sender = "user@example.com"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res := spf.VerifyWithOptions(ctx, z, args("192.0.2.1", sender), tt.opts)
			if res.Status != tt.result {
				t.Errorf("result %s, want %s (err %v)", res.Status, tt.result, res.Err)
			}
			if tt.err != nil && !errors.Is(res.Err, tt.err) {
				t.Errorf("err %v, want %v", res.Err, tt.err)
			}
			if q := z.Queries(); len(q) > tt.maxQ {
				t.Errorf("%d queries, want at most %d: %v", len(q), tt.maxQ, q[:min(len(q), 20)])
			}
		})
	}
}

// chain returns n domains each including the next.
func chain(n int) map[string][]string {
	txt := map[string][]string{"example.com": {"v=spf1 include:c0.example.net -all"}}
	for i := range n {
		txt[fmt.Sprintf("c%d.example.net", i)] = []string{fmt.Sprintf("v=spf1 include:c%d.example.net -all", i+1)}
	}
	return txt
}

// repeatTerms returns format filled with 0, 1, ... joined by spaces, up
// to about size octets.
func repeatTerms(format string, size int) string {
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, format, i%256)
	}
	return b.String()
}

func manyMX(n int) []dnscache.MX {
	out := make([]dnscache.MX, n)
	for i := range out {
		out[i] = dnscache.MX{Host: fmt.Sprintf("mx%d.example.net", i), Pref: uint16(i)}
	}
	return out
}
