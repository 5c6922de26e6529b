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

// zone returns a fake resolver with the given TXT records and a few
// addresses every test can use.
func zone(txt map[string][]string) *dnstest.Resolver {
	z := &dnstest.Resolver{
		TXT: txt,
		A: map[string][]string{
			"mail.example.com":  {"192.0.2.10"},
			"other.example.com": {"198.51.100.1"},
			"example.com":       {"203.0.113.5"},
		},
		AAAA: map[string][]string{
			"mail.example.com": {"2001:db8::10"},
		},
		MX: map[string][]dnscache.MX{
			"example.com": {{Host: "mail.example.com", Pref: 10}},
		},
		PTR:       map[string][]string{},
		Fail:      map[string]dnstest.Failure{},
		FailEmpty: map[string]dnstest.Failure{},
	}
	if z.TXT == nil {
		z.TXT = map[string][]string{}
	}
	return z
}

func args(ip, sender string) spf.Args {
	local, domain := spf.SplitSender(sender)
	return spf.Args{
		IP:             netip.MustParseAddr(ip),
		MailFromLocal:  local,
		MailFromDomain: domain,
		HELO:           "mail.example.com",
		Receiver:       "mx.receiver.example",
	}
}

func TestVerifyIdentities(t *testing.T) {
	t.Parallel()
	z := zone(map[string][]string{
		"example.com":      {"v=spf1 mx -all"},
		"mail.example.com": {"v=spf1 a -all"},
	})
	ctx := context.Background()
	tests := []struct {
		name                 string
		res                  spf.Result
		identity             spf.Identity
		sender, domain, mech string
		result               verify.Status
	}{
		{"mailfrom", spf.Verify(ctx, z, args("192.0.2.10", "user@example.com")),
			spf.IdentityMailFrom, "user@example.com", "example.com", "mx", verify.StatusPass},
		{"mailfrom-trailing-dot", spf.Verify(ctx, z, args("192.0.2.10", "user@example.com.")),
			spf.IdentityMailFrom, "user@example.com", "example.com", "mx", verify.StatusPass},
		{"null-sender-is-postmaster-at-helo", spf.Verify(ctx, z, args("192.0.2.10", "")),
			spf.IdentityMailFrom, "postmaster@mail.example.com", "mail.example.com", "a", verify.StatusPass},
		{"no-local-part", spf.Verify(ctx, z, args("192.0.2.99", "@example.com")),
			spf.IdentityMailFrom, "postmaster@example.com", "example.com", "-all", verify.StatusFail},
		{"helo", spf.VerifyHELO(ctx, z, args("192.0.2.99", "user@example.com")),
			spf.IdentityHELO, "postmaster@mail.example.com", "mail.example.com", "-all", verify.StatusFail},
		{"ipv4-mapped-client", spf.Verify(ctx, z, args("::ffff:192.0.2.10", "user@example.com")),
			spf.IdentityMailFrom, "user@example.com", "example.com", "mx", verify.StatusPass},
		{"ipv6-client", spf.Verify(ctx, z, args("2001:db8::10", "user@example.com")),
			spf.IdentityMailFrom, "user@example.com", "example.com", "mx", verify.StatusPass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.res
			if r.Status != tt.result || r.Identity != tt.identity || r.Sender != tt.sender ||
				r.Domain != tt.domain || r.Mechanism != tt.mech {
				t.Errorf("got %s %s %q %q %q, want %s %s %q %q %q (err %v)",
					r.Status, r.Identity, r.Sender, r.Domain, r.Mechanism,
					tt.result, tt.identity, tt.sender, tt.domain, tt.mech, r.Err)
			}
			if r.Status != verify.StatusFail && r.Explanation != "" {
				t.Errorf("explanation %q on %s", r.Explanation, r.Status)
			}
			if r.IP.Is4In6() {
				t.Errorf("IP %v not unmapped", r.IP)
			}
		})
	}
}

func TestInvalidInputsGiveNone(t *testing.T) {
	t.Parallel()
	z := zone(nil)
	ctx := context.Background()
	tests := []struct {
		name string
		res  spf.Result
		err  error
	}{
		{"helo-not-fqdn", spf.VerifyHELO(ctx, z, spf.Args{IP: netip.MustParseAddr("192.0.2.1"), HELO: "OEMCOMPUTER"}), spf.ErrInvalidDomain},
		{"helo-address-literal", spf.VerifyHELO(ctx, z, spf.Args{IP: netip.MustParseAddr("192.0.2.1"), HELO: "[192.0.2.1]"}), spf.ErrInvalidDomain},
		{"helo-ip", spf.VerifyHELO(ctx, z, spf.Args{IP: netip.MustParseAddr("192.0.2.1"), HELO: "192.0.2.1"}), spf.ErrInvalidDomain},
		{"null-sender-bad-helo", spf.Verify(ctx, z, spf.Args{IP: netip.MustParseAddr("192.0.2.1"), HELO: "localhost"}), spf.ErrInvalidDomain},
		{"domain-literal", spf.Verify(ctx, z, args("192.0.2.1", "foo@[192.0.2.1]")), spf.ErrInvalidDomain},
		{"long-label", spf.Verify(ctx, z, args("192.0.2.1", "foo@"+strings.Repeat("a", 64)+".example.com")), spf.ErrInvalidDomain},
		{"255-labels", spf.Verify(ctx, z, args("192.0.2.1", "foo@"+strings.Repeat("a.", 254)+"com")), spf.ErrInvalidDomain},
		{"invalid-u-label", spf.Verify(ctx, z, args("192.0.2.1", "foo@bü_cher.example")), spf.ErrInvalidDomain},
		{"latin1-byte", spf.Verify(ctx, z, args("192.0.2.1", "foo@b\xfccher.example")), spf.ErrInvalidDomain},
		{"no-ip", spf.Verify(ctx, z, spf.Args{MailFromLocal: "a", MailFromDomain: "example.com"}), spf.ErrInvalidIP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.res.Status != verify.StatusNone || !errors.Is(tt.res.Err, tt.err) {
				t.Errorf("got %s, %v; want none, %v", tt.res.Status, tt.res.Err, tt.err)
			}
		})
	}
	if q := z.Queries(); len(q) != 0 {
		t.Errorf("queries made for invalid inputs: %v", q)
	}
}

func TestResultsAndErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		txt    map[string][]string
		mutate func(*dnstest.Resolver)
		ip     string
		result verify.Status
		mech   string
		err    error // nil: Err must be nil
	}{
		{name: "no-record", txt: map[string][]string{"example.com": {"google-site-verification=x"}},
			result: verify.StatusNone, err: spf.ErrNoRecord},
		{name: "nxdomain", txt: map[string][]string{},
			result: verify.StatusNone, err: spf.ErrNoRecord},
		{name: "multiple-records", txt: map[string][]string{"example.com": {"v=spf1 -all", "v=spf1 +all"}},
			result: verify.StatusPermerror, err: spf.ErrMultipleRecords},
		{name: "default-neutral", txt: map[string][]string{"example.com": {"v=spf1 ip4:198.51.100.0/24"}},
			result: verify.StatusNeutral, mech: "default"},
		{name: "pass-ip4", txt: map[string][]string{"example.com": {"v=spf1 ip4:192.0.2.0/24 -all"}},
			result: verify.StatusPass, mech: "ip4:192.0.2.0/24"},
		{name: "softfail", txt: map[string][]string{"example.com": {"v=spf1 ~all"}},
			result: verify.StatusSoftfail, mech: "~all"},
		{name: "syntax-error-after-match", txt: map[string][]string{"example.com": {"v=spf1 +all moo"}},
			result: verify.StatusPermerror, err: spf.ErrSyntax},
		{name: "txt-servfail", txt: map[string][]string{"example.com": {"v=spf1 -all"}},
			mutate: func(z *dnstest.Resolver) { z.Fail["example.com/TXT"] = dnstest.ServFail },
			result: verify.StatusTemperror, err: dnscache.ErrTemporary},
		{name: "a-timeout", txt: map[string][]string{"example.com": {"v=spf1 a:slow.example.net -all"}},
			mutate: func(z *dnstest.Resolver) { z.Fail["slow.example.net"] = dnstest.Timeout },
			result: verify.StatusTemperror, mech: "a:slow.example.net", err: spf.ErrDNS},
		{name: "mx-host-servfail", txt: map[string][]string{"example.com": {"v=spf1 mx -all"}},
			mutate: func(z *dnstest.Resolver) { z.Fail["mail.example.com/A"] = dnstest.ServFail },
			result: verify.StatusTemperror, mech: "mx", err: spf.ErrDNS},
		{name: "include-none", txt: map[string][]string{"example.com": {"v=spf1 include:nothing.example.net -all"}},
			result: verify.StatusPermerror, mech: "include:nothing.example.net", err: spf.ErrIncludeNone},
		{name: "include-temperror", txt: map[string][]string{"example.com": {"v=spf1 include:slow.example.net -all"}},
			mutate: func(z *dnstest.Resolver) { z.Fail["slow.example.net"] = dnstest.Timeout },
			result: verify.StatusTemperror, mech: "include:slow.example.net", err: dnscache.ErrTemporary},
		{name: "include-permerror", txt: map[string][]string{
			"example.com":     {"v=spf1 include:bad.example.net -all"},
			"bad.example.net": {"v=spf1 ip4:300.0.0.1"}},
			result: verify.StatusPermerror, mech: "include:bad.example.net", err: spf.ErrSyntax},
		{name: "include-pass", txt: map[string][]string{
			"example.com":      {"v=spf1 include:_spf.example.net -all"},
			"_spf.example.net": {"v=spf1 ip4:192.0.2.1"}},
			result: verify.StatusPass, mech: "include:_spf.example.net"},
		{name: "redirect-none", txt: map[string][]string{"example.com": {"v=spf1 redirect=nothing.example.net"}},
			result: verify.StatusPermerror, mech: "redirect=nothing.example.net", err: spf.ErrRedirectNone},
		{name: "redirect-decides", txt: map[string][]string{
			"example.com":      {"v=spf1 ip4:198.51.100.1 redirect=_spf.example.net"},
			"_spf.example.net": {"v=spf1 ?ip4:192.0.2.0/24 -all"}},
			result: verify.StatusNeutral, mech: "?ip4:192.0.2.0/24"},
		{name: "too-many-lookups", txt: map[string][]string{"example.com": {"v=spf1 " + strings.Repeat("a ", 11) + "+all"}},
			result: verify.StatusPermerror, mech: "a", err: spf.ErrTooManyLookups},
		{name: "ten-lookups", txt: map[string][]string{"example.com": {"v=spf1 " + strings.Repeat("a ", 10) + "+all"}},
			result: verify.StatusPass, mech: "+all"},
		{name: "void-lookups", txt: map[string][]string{"example.com": {"v=spf1 a:n1.example.net a:n2.example.net a:n3.example.net +all"}},
			result: verify.StatusPermerror, mech: "a:n3.example.net", err: spf.ErrVoidLookups},
		{name: "two-void-lookups", txt: map[string][]string{"example.com": {"v=spf1 a:n1.example.net exists:n2.example.net +all"}},
			result: verify.StatusPass, mech: "+all"},
		{name: "too-many-mx", txt: map[string][]string{"example.com": {"v=spf1 mx:many.example.net -all"}},
			mutate: func(z *dnstest.Resolver) {
				for i := range 11 {
					z.MX["many.example.net"] = append(z.MX["many.example.net"], dnscache.MX{Host: fmt.Sprintf("mx%d.example.net", i)})
				}
			},
			result: verify.StatusPermerror, mech: "mx:many.example.net", err: spf.ErrTooManyMX},
		{name: "null-mx", txt: map[string][]string{"example.com": {"v=spf1 mx:null.example.net -all"}},
			mutate: func(z *dnstest.Resolver) { z.MX["null.example.net"] = []dnscache.MX{{Host: ""}} },
			result: verify.StatusFail, mech: "-all"},
		{name: "invalid-target-no-match", txt: map[string][]string{"example.com": {"v=spf1 a:mail.example...com ?all"}},
			result: verify.StatusNeutral, mech: "?all"},
		{name: "ip6-does-not-match-ipv4", txt: map[string][]string{"example.com": {"v=spf1 ip6:::ffff:192.0.2.1 ip6:::/0 -all"}},
			result: verify.StatusFail, mech: "-all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := zone(tt.txt)
			if tt.mutate != nil {
				tt.mutate(z)
			}
			ip := tt.ip
			if ip == "" {
				ip = "192.0.2.1"
			}
			res := spf.Verify(context.Background(), z, args(ip, "user@example.com"))
			if res.Status != tt.result {
				t.Errorf("result %s, want %s (err %v)", res.Status, tt.result, res.Err)
			}
			if tt.mech != "" && res.Mechanism != tt.mech {
				t.Errorf("mechanism %q, want %q", res.Mechanism, tt.mech)
			}
			if tt.err == nil && res.Err != nil {
				t.Errorf("err %v, want nil", res.Err)
			}
			if tt.err != nil && !errors.Is(res.Err, tt.err) {
				t.Errorf("err %v, want %v", res.Err, tt.err)
			}
			if res.Lookups > 10 || res.VoidLookups > 3 {
				t.Errorf("lookups %d, void %d", res.Lookups, res.VoidLookups)
			}
		})
	}
}

func TestExplanation(t *testing.T) {
	t.Parallel()
	z := zone(map[string][]string{
		"example.com":      {"v=spf1 -ip4:192.0.2.0/24 redirect=_spf.example.com"},
		"_spf.example.com": {"v=spf1 -all exp=why.%{o}"},
		"why.example.com":  {"%{c} may not send for %{o} (checked at %{d}, by %{r} at %{t})"},
		"bad.example.com":  {"v=spf1 -all exp=nowhere.example.com"},
	})
	now := func() time.Time { return time.Unix(1234567890, 0) }
	opts := &spf.Options{Now: now}
	ctx := context.Background()

	res := spf.VerifyWithOptions(ctx, z, args("192.0.2.1", "user@example.com"), opts)
	want := "domain of example.com does not designate 192.0.2.1 as permitted sender"
	if res.Status != verify.StatusFail || res.Explanation != want {
		t.Errorf("default: %s %q, want fail %q", res.Status, res.Explanation, want)
	}

	res = spf.VerifyWithOptions(ctx, z, args("198.51.100.7", "user@example.com"), opts)
	want = "198.51.100.7 may not send for example.com (checked at _spf.example.com, by mx.receiver.example at 1234567890)"
	if res.Status != verify.StatusFail || res.Mechanism != "-all" || res.Explanation != want {
		t.Errorf("exp after redirect: %s %q %q, want fail -all %q", res.Status, res.Mechanism, res.Explanation, want)
	}

	opts = &spf.Options{DefaultExplanation: "see https://example.org/spf?s=%{S}"}
	res = spf.VerifyWithOptions(ctx, z, args("198.51.100.7", "a+b@bad.example.com"), opts)
	want = "see https://example.org/spf?s=a%2Bb%40bad.example.com"
	if res.Explanation != want {
		t.Errorf("configured default: %q, want %q", res.Explanation, want)
	}
}

func TestOptionsLimits(t *testing.T) {
	t.Parallel()
	z := zone(map[string][]string{
		"example.com":  {"v=spf1 " + strings.Repeat("a ", 15) + "+all"},
		"void.example": {"v=spf1 a:n1.example.net a:n2.example.net a:n3.example.net +all"},
	})
	ctx := context.Background()
	res := spf.VerifyWithOptions(ctx, z, args("192.0.2.1", "u@example.com"), &spf.Options{MaxLookups: 20})
	if res.Status != verify.StatusPass || res.Lookups != 15 {
		t.Errorf("MaxLookups 20: %s after %d lookups (%v)", res.Status, res.Lookups, res.Err)
	}
	res = spf.VerifyWithOptions(ctx, z, args("192.0.2.1", "u@void.example"), &spf.Options{MaxVoidLookups: -1})
	if res.Status != verify.StatusPass || res.VoidLookups != 3 {
		t.Errorf("void limit off: %s with %d void lookups (%v)", res.Status, res.VoidLookups, res.Err)
	}
}

func TestContextEnded(t *testing.T) {
	t.Parallel()
	z := zone(map[string][]string{"example.com": {"v=spf1 -all"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := spf.Verify(ctx, z, args("192.0.2.1", "u@example.com"))
	if res.Status != verify.StatusTemperror || !errors.Is(res.Err, context.Canceled) || !errors.Is(res.Err, spf.ErrDNS) {
		t.Errorf("got %s, %v; want temperror wrapping context.Canceled", res.Status, res.Err)
	}
}

// cancelAfter is a resolver that ends the context after n lookups, like a
// per-message deadline expiring in the middle of an evaluation.
type cancelAfter struct {
	dnscache.Resolver
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) tick() {
	if c.n--; c.n <= 0 {
		c.cancel()
	}
}

func (c *cancelAfter) LookupA(ctx context.Context, name string) ([]netip.Addr, dnscache.AnswerInfo, error) {
	c.tick()
	return c.Resolver.LookupA(ctx, name)
}

func TestContextEndsMidway(t *testing.T) {
	t.Parallel()
	z := zone(map[string][]string{"example.com": {"v=spf1 a:n1.example.net a:other.example.com a:mail.example.com -all"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &cancelAfter{Resolver: z, n: 2, cancel: cancel}
	res := spf.Verify(ctx, r, args("192.0.2.10", "u@example.com"))
	if res.Status != verify.StatusTemperror || !errors.Is(res.Err, context.Canceled) {
		t.Errorf("got %s, %v; want temperror wrapping context.Canceled", res.Status, res.Err)
	}
}

func TestPTR(t *testing.T) {
	t.Parallel()
	z := zone(map[string][]string{
		"example.com": {"v=spf1 ptr:example.org ptr exists:%{p}.allowed.example.com -all"},
	})
	rev := dnscache.ReverseName(netip.MustParseAddr("192.0.2.10"))
	z.PTR[rev] = []string{"other.example.org.", "mail.example.com.", "unvalidated.example.com."}
	z.A["other.example.org"] = []string{"198.51.100.1"}
	z.A["mail.example.com.allowed.example.com"] = []string{"127.0.0.2"}
	res := spf.Verify(context.Background(), z, args("192.0.2.10", "u@example.com"))
	if res.Status != verify.StatusPass || res.Mechanism != "ptr" {
		t.Errorf("got %s by %q (%v), want pass by ptr", res.Status, res.Mechanism, res.Err)
	}
	for _, q := range z.Queries() {
		// Only names that could match are validated.
		if strings.Contains(q, "unvalidated") {
			t.Errorf("needless query %s", q)
		}
	}
}

func TestPMacroQueriesPTROnce(t *testing.T) {
	t.Parallel()
	z := zone(map[string][]string{
		"example.com": {"v=spf1 exists:%{p}.a.example.com exists:%{p}.b.example.com ptr ptr:example.org -all"},
	})
	rev := dnscache.ReverseName(netip.MustParseAddr("192.0.2.10"))
	z.PTR[rev] = []string{"mail.example.com"}
	res := spf.Verify(context.Background(), z, args("192.0.2.10", "u@example.com"))
	if res.Status != verify.StatusPass || res.Mechanism != "ptr" {
		t.Errorf("got %s by %q (%v), want pass by ptr", res.Status, res.Mechanism, res.Err)
	}
	n := 0
	for _, q := range z.Queries() {
		if strings.HasPrefix(q, "PTR ") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d PTR queries, want 1: %v", n, z.Queries())
	}
}
