package dmarc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify"
)

// want is what an evaluation case checks; zero fields are not checked,
// except result.
type want struct {
	result       verify.Status
	author       string
	org          string
	policyDomain string
	applied      PolicyTag
	policy       Policy
	disposition  Policy // checked whenever result is set
	reduced      Reduction
	sampled      bool
	spf          *Alignment
	dkim         []Alignment
	err          error
	reason       string   // substring of Reason
	note         bool     // RecordNote set
	queries      []string // exact query log, when non-nil
	authors      int      // len(Authors)
	skipped      int      // SkippedWalks, checked when set or when queries is
}

func al(a Alignment) *Alignment { return &a }

func pass(domain string) SPF {
	return SPF{Status: verify.StatusPass, Domain: domain, Identity: IdentityMailFrom}
}

func dkimPass(domain string) DKIM {
	return DKIM{Status: verify.StatusPass, Domain: domain, Selector: "sel"}
}

func from(addr ...string) []string { return addr }

// noRand fails the test if pct sampling draws a number.
func noRand(t *testing.T) func(int) int {
	return func(int) int { t.Error("Rand called"); return 0 }
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	const (
		reject     = "v=DMARC1; p=reject"
		quarantine = "v=DMARC1; p=quarantine"
		none       = "v=DMARC1; p=none"
	)
	tests := []struct {
		name string
		zone *dnstest.Resolver
		args Args
		opts *Options // Rand defaults to noRand
		want want
	}{
		// --- pass and fail, alignment modes ---
		{
			name: "SPF strict alignment passes",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject}}},
			args: Args{From: from("a@example.com"), SPF: pass("example.com")},
			want: want{result: verify.StatusPass, author: "example.com", org: "example.com", policyDomain: "example.com",
				applied: TagP, policy: PolicyReject, disposition: PolicyNone, spf: al(AlignedStrict), reason: "SPF mailfrom example.com aligned (strict)",
				queries: []string{"TXT _dmarc.example.com", "TXT _dmarc.com"}},
		},
		{
			name: "SPF relaxed alignment passes",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject}}},
			args: Args{From: from("a@example.com"), SPF: pass("child.example.com")},
			want: want{result: verify.StatusPass, spf: al(AlignedRelaxed),
				queries: []string{"TXT _dmarc.example.com", "TXT _dmarc.com", "TXT _dmarc.child.example.com"}},
		},
		{
			name: "aspf=s refuses relaxed alignment",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject + "; aspf=s"}}},
			args: Args{From: from("a@example.com"), SPF: pass("child.example.com")},
			want: want{result: verify.StatusFail, spf: al(NotAligned), policy: PolicyReject, disposition: PolicyReject,
				queries: []string{"TXT _dmarc.example.com", "TXT _dmarc.com"}},
		},
		{
			name: "adkim=s refuses relaxed alignment, strict DKIM still passes",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject + "; adkim=s"}}},
			args: Args{From: from("a@example.com"), DKIM: []DKIM{dkimPass("child.example.com"), dkimPass("EXAMPLE.com")}},
			want: want{result: verify.StatusPass, dkim: []Alignment{NotAligned, AlignedStrict}, reason: "DKIM d=example.com s=sel aligned (strict)"},
		},
		{
			name: "unrelated identifiers fail without further walks",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {quarantine}}},
			args: Args{From: from("a@example.com"), SPF: pass("example.net"), DKIM: []DKIM{dkimPass("example.org")}},
			want: want{result: verify.StatusFail, spf: al(NotAligned), dkim: []Alignment{NotAligned}, applied: TagP,
				policy: PolicyQuarantine, disposition: PolicyQuarantine, reason: "no aligned SPF or DKIM pass", skipped: 2,
				queries: []string{"TXT _dmarc.example.com", "TXT _dmarc.com"}},
		},
		{
			name: "non-pass results never align",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject}}},
			args: Args{From: from("a@example.com"),
				SPF:  SPF{Status: verify.StatusFail, Domain: "example.com"},
				DKIM: []DKIM{{Status: verify.StatusFail, Domain: "example.com"}, {Status: verify.StatusPermerror, Domain: "example.com"}, {Status: verify.StatusPolicy, Domain: "example.com"}}},
			want: want{result: verify.StatusFail, spf: al(NotAligned), dkim: []Alignment{NotAligned, NotAligned, NotAligned}, disposition: PolicyReject},
		},
		{
			name: "second DKIM signature aligns",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject}}},
			args: Args{From: from("a@example.com"), DKIM: []DKIM{{Status: verify.StatusFail, Domain: "example.com"}, dkimPass("mail.example.com")}},
			want: want{result: verify.StatusPass, dkim: []Alignment{NotAligned, AlignedRelaxed}},
		},
		{
			name: "no SPF or DKIM at all fails",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject}}},
			args: Args{From: from("a@example.com")},
			want: want{result: verify.StatusFail, disposition: PolicyReject},
		},
		{
			name: "HELO identity for a null MAIL FROM",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject}}},
			args: Args{From: from("a@example.com"), SPF: SPF{Status: verify.StatusPass, Domain: "mx.example.com", Identity: IdentityHELO}},
			want: want{result: verify.StatusPass, spf: al(AlignedRelaxed), reason: "SPF helo mx.example.com aligned (relaxed)"},
		},
		{
			name: "identifier domains are normalised",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.xn--bcher-kva.example": {reject}}},
			args: Args{From: from("a@BÜCHER.example"), DKIM: []DKIM{dkimPass("bücher.example.")}},
			want: want{result: verify.StatusPass, author: "xn--bcher-kva.example", dkim: []Alignment{AlignedStrict}},
		},
		{
			name: "invalid identifier domain is kept but never aligns",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject}}},
			args: Args{From: from("a@example.com"), DKIM: []DKIM{dkimPass("bad domain.example.com")}},
			want: want{result: verify.StatusFail, dkim: []Alignment{NotAligned}},
		},

		// --- no policy ---
		{
			name: "no record anywhere: none",
			zone: &dnstest.Resolver{},
			args: Args{From: from("a@mail.example.com"), SPF: pass("mail.example.com")},
			want: want{result: verify.StatusNone, org: "mail.example.com", disposition: PolicyNone, reason: "no DMARC policy record",
				queries: []string{"TXT _dmarc.mail.example.com", "TXT _dmarc.example.com", "TXT _dmarc.com"}},
		},
		{
			name: "non-DMARC TXT at _dmarc: none",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=spf1 -all", "google-site-verification=x"}}},
			args: Args{From: from("a@example.com")},
			want: want{result: verify.StatusNone},
		},
		{
			name: "several records at the author: discarded, parent record applies (tree walk)",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.mail.example.com": {reject, none}, "_dmarc.example.com": {quarantine + "; sp=none"}}},
			args: Args{From: from("a@mail.example.com")},
			want: want{result: verify.StatusFail, policyDomain: "example.com", applied: TagSP, policy: PolicyNone, disposition: PolicyNone},
		},
		{
			name: "several records at the only name: none, with the reason",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject, none}}},
			args: Args{From: from("a@example.com")},
			want: want{result: verify.StatusNone, reason: "several DMARC records discarded at _dmarc.example.com"},
		},
		{
			name: "several records at the author: none (PSL, RFC 7489)",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.mail.example.com": {reject, none}, "_dmarc.example.com": {quarantine}}},
			args: Args{From: from("a@mail.example.com")},
			opts: &Options{Finder: PSL{}},
			want: want{result: verify.StatusNone, org: "example.com", reason: "several DMARC records discarded at _dmarc.mail.example.com",
				queries: []string{"TXT _dmarc.mail.example.com"}},
		},

		// --- which policy applies: p, sp, np ---
		{
			name: "subdomain gets sp",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=none; sp=reject"}}},
			args: Args{From: from("a@mail.example.com")},
			want: want{result: verify.StatusFail, org: "example.com", policyDomain: "example.com", applied: TagSP, policy: PolicyReject, disposition: PolicyReject},
		},
		{
			name: "subdomain without sp gets p",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {quarantine}}},
			args: Args{From: from("a@mail.example.com")},
			want: want{result: verify.StatusFail, applied: TagP, policy: PolicyQuarantine, disposition: PolicyQuarantine},
		},
		{
			name: "sp is ignored for the Organizational Domain itself",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=none; sp=reject; np=reject"}}},
			args: Args{From: from("a@example.com")},
			want: want{result: verify.StatusFail, applied: TagP, policy: PolicyNone, disposition: PolicyNone,
				queries: []string{"TXT _dmarc.example.com", "TXT _dmarc.com"}},
		},
		{
			name: "np for a non-existent subdomain (NXDOMAIN)",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=none; sp=quarantine; np=reject"}}},
			args: Args{From: from("a@nosuch.example.com")},
			want: want{result: verify.StatusFail, applied: TagNP, policy: PolicyReject, disposition: PolicyReject,
				queries: []string{"TXT _dmarc.nosuch.example.com", "TXT _dmarc.example.com", "TXT _dmarc.com", "A nosuch.example.com"}},
		},
		{
			name: "np does not apply to a subdomain that exists without A records (NODATA)",
			zone: &dnstest.Resolver{
				TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=none; sp=quarantine; np=reject"}},
				MX:  map[string][]dnscache.MX{"mail.example.com": {{Host: "mx.example.com", Pref: 10}}},
			},
			args: Args{From: from("a@mail.example.com")},
			want: want{result: verify.StatusFail, applied: TagSP, policy: PolicyQuarantine, disposition: PolicyQuarantine},
		},
		{
			name: "np does not apply to an existing subdomain; p without sp",
			zone: &dnstest.Resolver{
				TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=quarantine; np=reject"}},
				A:   map[string][]string{"www.example.com": {"192.0.2.1"}},
			},
			args: Args{From: from("a@www.example.com")},
			want: want{result: verify.StatusFail, applied: TagP, policy: PolicyQuarantine, disposition: PolicyQuarantine},
		},
		{
			name: "np existence check fails temporarily",
			zone: &dnstest.Resolver{
				TXT:  map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=none; np=reject"}},
				Fail: map[string]dnstest.Failure{"x.example.com/A": dnstest.Timeout},
			},
			args: Args{From: from("a@x.example.com")},
			want: want{result: verify.StatusTemperror, err: dnscache.ErrTemporary, disposition: PolicyNone},
		},
		{
			name: "PSD record applies to a domain below the PSD",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.bank.example": {"v=DMARC1; p=reject; sp=quarantine; psd=y"}}},
			args: Args{From: from("a@giant.bank.example")},
			want: want{result: verify.StatusFail, org: "giant.bank.example", policyDomain: "bank.example", applied: TagSP, policy: PolicyQuarantine, disposition: PolicyQuarantine},
		},
		{
			name: "PSD np for a non-existent registration",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.bank.example": {"v=DMARC1; p=none; np=reject; psd=y"}}},
			args: Args{From: from("a@fake.bank.example")},
			want: want{result: verify.StatusFail, policyDomain: "bank.example", applied: TagNP, policy: PolicyReject, disposition: PolicyReject},
		},

		// --- t=y and pct ---
		{
			name: "t=y lowers reject to quarantine",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject + "; t=y"}}},
			args: Args{From: from("a@example.com")},
			want: want{result: verify.StatusFail, policy: PolicyReject, disposition: PolicyQuarantine, reduced: ReducedTesting},
		},
		{
			name: "t=y lowers quarantine to none",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {quarantine + "; t=y"}}},
			args: Args{From: from("a@example.com")},
			want: want{result: verify.StatusFail, policy: PolicyQuarantine, disposition: PolicyNone, reduced: ReducedTesting},
		},
		{
			name: "t=y has no effect on none",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {none + "; t=y"}}},
			args: Args{From: from("a@example.com")},
			want: want{result: verify.StatusFail, policy: PolicyNone, disposition: PolicyNone},
		},
		{
			name: "t=y has no effect on a pass",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject + "; t=y"}}},
			args: Args{From: from("a@example.com"), SPF: pass("example.com")},
			want: want{result: verify.StatusPass, policy: PolicyReject, disposition: PolicyNone},
		},
		{
			name: "pct=0 samples every message out: reject becomes quarantine",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject + "; pct=0"}}},
			args: Args{From: from("a@example.com")},
			opts: &Options{Rand: func(int) int { return 0 }},
			want: want{result: verify.StatusFail, policy: PolicyReject, disposition: PolicyQuarantine, reduced: ReducedSampling, sampled: true},
		},
		{
			name: "pct=50, draw 49: inside the sample",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject + "; pct=50"}}},
			args: Args{From: from("a@example.com")},
			opts: &Options{Rand: func(n int) int { return 49 }},
			want: want{result: verify.StatusFail, policy: PolicyReject, disposition: PolicyReject, sampled: true},
		},
		{
			name: "pct=50, draw 50: outside, quarantine becomes none",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {quarantine + "; pct=50"}}},
			args: Args{From: from("a@example.com")},
			opts: &Options{Rand: func(n int) int { return 50 }},
			want: want{result: verify.StatusFail, policy: PolicyQuarantine, disposition: PolicyNone, reduced: ReducedSampling, sampled: true},
		},
		{
			name: "pct with t=y lowers once",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject + "; pct=0; t=y"}}},
			args: Args{From: from("a@example.com")},
			want: want{result: verify.StatusFail, policy: PolicyReject, disposition: PolicyQuarantine, reduced: ReducedTesting},
		},
		{
			name: "pct on p=none draws nothing",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {none + "; pct=10"}}},
			args: Args{From: from("a@example.com")},
			want: want{result: verify.StatusFail, policy: PolicyNone, disposition: PolicyNone},
		},
		{
			name: "invalid pct means 100",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject + "; pct=abc"}}},
			args: Args{From: from("a@example.com")},
			want: want{result: verify.StatusFail, disposition: PolicyReject},
		},

		// --- records without a valid policy (RFC 9989 §4.10.1) ---
		{
			name: "missing p without rua: permerror",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; adkim=s"}}},
			args: Args{From: from("a@example.com")},
			want: want{result: verify.StatusPermerror, err: ErrNoValidPolicy, disposition: PolicyNone, policyDomain: "example.com"},
		},
		{
			name: "invalid p without rua: permerror",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=bounce"}}},
			args: Args{From: from("a@example.com"), SPF: pass("example.com")},
			want: want{result: verify.StatusPermerror, err: ErrNoValidPolicy},
		},
		{
			name: "invalid p with a valid rua: p=none",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=bounce; rua=mailto:d@example.com"}}},
			args: Args{From: from("a@example.com")},
			want: want{result: verify.StatusFail, applied: TagP, policy: PolicyNone, disposition: PolicyNone, note: true},
		},
		{
			name: "missing p with a valid rua: p=none, still passes",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; rua=mailto:d@example.com"}}},
			args: Args{From: from("a@example.com"), DKIM: []DKIM{dkimPass("example.com")}},
			want: want{result: verify.StatusPass, policy: PolicyNone, note: true},
		},
		{
			name: "missing p with only an invalid rua: permerror",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; rua=d@example.com"}}},
			args: Args{From: from("a@example.com")},
			want: want{result: verify.StatusPermerror, err: ErrNoValidPolicy},
		},
		{
			name: "invalid sp with a valid rua: p=none for the subdomain too",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject; sp=bogus; rua=mailto:d@example.com"}}},
			args: Args{From: from("a@mail.example.com")},
			want: want{result: verify.StatusFail, applied: TagP, policy: PolicyNone, disposition: PolicyNone, note: true},
		},
		{
			name: "invalid np without rua: permerror",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject; np=bogus"}}},
			args: Args{From: from("a@example.com")},
			want: want{result: verify.StatusPermerror, err: ErrNoValidPolicy},
		},

		// --- DNS failures ---
		{
			name: "temporary failure at the author's _dmarc: temperror",
			zone: &dnstest.Resolver{Fail: map[string]dnstest.Failure{"_dmarc.example.com": dnstest.ServFail}},
			args: Args{From: from("a@example.com"), SPF: pass("example.com")},
			want: want{result: verify.StatusTemperror, err: ErrDNS, disposition: PolicyNone},
		},
		{
			name: "temporary failure walking an identifier that alone could pass: temperror",
			zone: &dnstest.Resolver{
				TXT:  map[string][]string{"_dmarc.example.com": {reject}},
				Fail: map[string]dnstest.Failure{"_dmarc.mail.example.com": dnstest.Timeout},
			},
			args: Args{From: from("a@example.com"), DKIM: []DKIM{dkimPass("mail.example.com")}},
			want: want{result: verify.StatusTemperror, err: dnscache.ErrTemporary},
		},
		{
			name: "temporary failure walking one identifier while another aligns: pass",
			zone: &dnstest.Resolver{
				TXT:  map[string][]string{"_dmarc.example.com": {reject}},
				Fail: map[string]dnstest.Failure{"_dmarc.mail.example.com": dnstest.Timeout},
			},
			args: Args{From: from("a@example.com"), SPF: pass("mail.example.com"), DKIM: []DKIM{dkimPass("example.com")}},
			want: want{result: verify.StatusPass, dkim: []Alignment{AlignedStrict}},
		},
		{
			name: "SPF temperror for an aligned domain and nothing passes: temperror",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject}}},
			args: Args{From: from("a@example.com"), SPF: SPF{Status: verify.StatusTemperror, Domain: "bounce.example.com"}},
			want: want{result: verify.StatusTemperror, err: ErrDNS, reason: "SPF temperror for bounce.example.com"},
		},
		{
			name: "DKIM temperror for an unaligned domain: fail",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject}}},
			args: Args{From: from("a@example.com"), DKIM: []DKIM{{Status: verify.StatusTemperror, Domain: "example.net"}}},
			want: want{result: verify.StatusFail, disposition: PolicyReject},
		},

		// --- From handling ---
		{
			name: "no From field: permerror",
			args: Args{SPF: pass("example.com")},
			want: want{result: verify.StatusPermerror, err: ErrNoFrom, disposition: PolicyNone, queries: []string{}},
		},
		{
			name: "unparseable From: permerror",
			args: Args{From: from("Jane Doe")},
			want: want{result: verify.StatusPermerror, err: ErrFromSyntax},
		},
		{
			name: "address literal in From: permerror",
			args: Args{From: from("jane@[192.0.2.1]")},
			want: want{result: verify.StatusPermerror, err: ErrAuthorDomain},
		},
		{
			name: "two From fields, one domain: evaluated once",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject}}},
			args: Args{From: from("a@example.com", "b@example.com"), SPF: pass("example.com")},
			want: want{result: verify.StatusPass, reason: "(2 From header fields)"},
		},
		{
			name: "two author domains: the failing one decides",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject}, "_dmarc.example.net": {reject}}},
			args: Args{From: from("a@example.com, b@example.net"), SPF: pass("example.com")},
			want: want{result: verify.StatusFail, author: "example.net", disposition: PolicyReject, authors: 2, reason: "strictest of 2 author domains"},
		},
		{
			name: "two author domains, strictest disposition wins",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {quarantine}, "_dmarc.example.net": {reject}, "_dmarc.example.org": {none}}},
			args: Args{From: from("a@example.com", "b@example.net", "c@example.org")},
			want: want{result: verify.StatusFail, author: "example.net", disposition: PolicyReject, authors: 3},
		},
		{
			name: "two author domains, one without policy: none, not pass",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject}}},
			args: Args{From: from("a@example.com, b@example.net"), SPF: pass("example.com")},
			want: want{result: verify.StatusNone, author: "example.net", authors: 2},
		},
		{
			name: "two author domains, both pass",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {reject}, "_dmarc.example.net": {reject}}},
			args: Args{From: from("a@example.com, b@example.net"), DKIM: []DKIM{dkimPass("example.com"), dkimPass("example.net")}},
			want: want{result: verify.StatusPass, authors: 2},
		},
		{
			name: "too many author domains: permerror",
			args: Args{From: from("a@a.example, b@b.example, c@c.example")},
			opts: &Options{MaxAuthorDomains: 2},
			want: want{result: verify.StatusPermerror, err: ErrTooManyAuthors, queries: []string{}},
		},

		// --- PSL (RFC 7489) method ---
		{
			name: "PSL: org domain record applies with sp",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.co.uk": {"v=DMARC1; p=none; sp=reject"}}},
			args: Args{From: from("a@mail.example.co.uk"), SPF: pass("other.example.co.uk")},
			opts: &Options{Finder: PSL{}},
			want: want{result: verify.StatusPass, org: "example.co.uk", policyDomain: "example.co.uk", applied: TagSP, policy: PolicyReject,
				spf: al(AlignedRelaxed), queries: []string{"TXT _dmarc.mail.example.co.uk", "TXT _dmarc.example.co.uk"}},
		},
		{
			name: "PSL aligns where the tree walk does not",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.a.example.com": {reject + "; psd=n"}}},
			args: Args{From: from("x@a.example.com"), DKIM: []DKIM{dkimPass("b.example.com")}},
			opts: &Options{Finder: PSL{}},
			want: want{result: verify.StatusPass, org: "example.com", dkim: []Alignment{AlignedRelaxed}},
		},
		{
			name: "tree walk: psd=n makes the subdomain its own org domain",
			zone: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.a.example.com": {reject + "; psd=n"}}},
			args: Args{From: from("x@a.example.com"), DKIM: []DKIM{dkimPass("b.example.com")}},
			want: want{result: verify.StatusFail, org: "a.example.com", dkim: []Alignment{NotAligned}, disposition: PolicyReject},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := tc.zone
			if r == nil {
				r = &dnstest.Resolver{}
			}
			opts := tc.opts
			if opts == nil {
				opts = &Options{}
			}
			if opts.Rand == nil {
				o := *opts
				o.Rand = noRand(t)
				opts = &o
			}
			// The exact query log is that of the walk asked one name at
			// a time; the concurrent walk must decide the same.
			seqOpts := *opts
			if seqOpts.Finder == nil {
				seqOpts.Finder = TreeWalk{Sequential: true}
			}
			got := Evaluate(context.Background(), r, tc.args, &seqOpts)
			checkResult(t, got, tc.want)
			q := r.Queries()
			if q == nil {
				q = []string{}
			}
			if tc.want.queries != nil && !slices.Equal(q, tc.want.queries) {
				t.Errorf("queries\n got %q\nwant %q", q, tc.want.queries)
			}
			r.ResetQueries()
			con := Evaluate(context.Background(), r, tc.args, opts)
			if !sameResult(got, con) {
				t.Errorf("concurrent walk: %s/%s (%s), sequential %s/%s (%s)", con.Status, con.Disposition, con.Reason, got.Status, got.Disposition, got.Reason)
			}
			checkConcurrentLog(t, r.Queries(), nil, q)
		})
	}
}

func checkResult(t *testing.T, got Result, w want) {
	t.Helper()
	if got.Status != w.result {
		t.Fatalf("Result = %q, want %q (reason %q, err %v)", got.Status, w.result, got.Reason, got.Err)
	}
	check := func(name string, g, w any, skip bool) {
		t.Helper()
		if !skip && g != w {
			t.Errorf("%s = %v, want %v", name, g, w)
		}
	}
	check("AuthorDomain", got.AuthorDomain, w.author, w.author == "")
	check("OrgDomain", got.OrgDomain, w.org, w.org == "")
	check("PolicyDomain", got.PolicyDomain, w.policyDomain, w.policyDomain == "")
	check("Applied", got.Applied, w.applied, w.applied == "")
	check("Policy", got.Policy, w.policy, w.policy == "")
	check("Disposition", got.Disposition, w.disposition, w.disposition == "")
	check("Reduced", got.Reduced, w.reduced, false)
	check("Sampled", got.Sampled, w.sampled, false)
	check("RecordNote set", got.RecordNote != "", w.note, false)
	check("len(Authors)", len(got.Authors), w.authors, false)
	check("SkippedWalks", got.SkippedWalks, w.skipped, w.skipped == 0 && w.queries == nil)
	if got.Status != verify.StatusFail && got.Disposition != PolicyNone {
		t.Errorf("Disposition %q on a %s result", got.Disposition, got.Status)
	}
	switch got.Status {
	case verify.StatusPass, verify.StatusFail:
		if got.Record == nil {
			t.Errorf("no Record on a %s result", got.Status)
		}
	case verify.StatusNone:
		if got.Record != nil {
			t.Errorf("Record %q on a none result", got.Record.Raw)
		}
	}
	if w.spf != nil {
		if got.SPF == nil {
			t.Errorf("SPF missing, want alignment %q", *w.spf)
		} else {
			check("SPF alignment", got.SPF.Alignment, *w.spf, false)
		}
	}
	if w.dkim != nil {
		var g []Alignment
		for _, d := range got.DKIM {
			g = append(g, d.Alignment)
		}
		if !slices.Equal(g, w.dkim) {
			t.Errorf("DKIM alignments %q, want %q", g, w.dkim)
		}
	}
	if w.err != nil && !errors.Is(got.Err, w.err) {
		t.Errorf("Err = %v, want %v", got.Err, w.err)
	}
	if w.err == nil && got.Err != nil && got.Status != verify.StatusTemperror && got.Status != verify.StatusPermerror {
		t.Errorf("unexpected Err %v", got.Err)
	}
	if w.reason != "" && !strings.Contains(got.Reason, w.reason) {
		t.Errorf("Reason = %q, want it to contain %q", got.Reason, w.reason)
	}
	if got.Status != "" && got.Reason == "" {
		t.Errorf("empty Reason")
	}
	if got.Status == verify.StatusPass && len(got.Aligned()) == 0 {
		t.Errorf("pass without an aligned identifier")
	}
}

// TestEvaluateMemo checks that one evaluation queries each _dmarc name once
// (RFC 9989 Appendix B.4.1: the identifier's walk reuses the author's).
func TestEvaluateMemo(t *testing.T) {
	t.Parallel()
	r := &dnstest.Resolver{TXT: map[string][]string{
		"_dmarc.example.com":         {"v=DMARC1; p=reject"},
		"_dmarc.signing.example.com": {"v=DMARC1; p=reject"},
	}}
	res := Evaluate(context.Background(), r, Args{
		From: from("a@example.com"),
		SPF:  pass("example.com"),
		DKIM: []DKIM{dkimPass("signing.example.com"), dkimPass("signing.example.com")},
	}, nil)
	if res.Status != verify.StatusPass {
		t.Fatalf("Result %q: %s", res.Status, res.Reason)
	}
	want := []string{"TXT _dmarc.example.com", "TXT _dmarc.com", "TXT _dmarc.signing.example.com"}
	if got := r.Queries(); !slices.Equal(got, want) {
		t.Errorf("queries\n got %q\nwant %q", got, want)
	}
	for _, d := range res.DKIM {
		if d.Alignment != AlignedRelaxed || d.OrgDomain != "example.com" {
			t.Errorf("DKIM %s: %q, org %q", d.Domain, d.Alignment, d.OrgDomain)
		}
	}
}

// TestEvaluateContextCanceled: a canceled context is a temporary failure.
func TestEvaluateContextCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject"}}}
	res := Evaluate(ctx, r, Args{From: from("a@example.com")}, nil)
	if res.Status != verify.StatusTemperror || !errors.Is(res.Err, ErrDNS) {
		t.Fatalf("Result %q, err %v", res.Status, res.Err)
	}
}

// TestEvaluateGivenAuthors: Author Domains the caller extracted already
// are evaluated as given (From is not parsed again: an unparseable From is
// no permerror then), and the limit applies to them; no Authors means From
// is parsed.
func TestEvaluateGivenAuthors(t *testing.T) {
	t.Parallel()
	r := &dnstest.Resolver{TXT: map[string][]string{
		"_dmarc.example.com": {"v=DMARC1; p=reject"},
		"_dmarc.example.net": {"v=DMARC1; p=none"},
	}}
	res := Evaluate(context.Background(), r, Args{
		From:    from("not an address"),
		Authors: []string{"example.net"},
		SPF:     pass("example.net"),
	}, nil)
	if res.Status != verify.StatusPass || res.AuthorDomain != "example.net" {
		t.Fatalf("given authors: %q for %q: %s", res.Status, res.AuthorDomain, res.Reason)
	}
	res = Evaluate(context.Background(), r, Args{From: from("not an address"), SPF: pass("example.net")}, nil)
	if res.Status != verify.StatusPermerror {
		t.Fatalf("no authors given, From unparseable: %q", res.Status)
	}
	res = Evaluate(context.Background(), r, Args{
		From:    from("a@example.com"),
		Authors: []string{"example.com", "example.net"},
	}, &Options{MaxAuthorDomains: 1})
	if res.Status != verify.StatusPermerror || !errors.Is(res.Err, ErrTooManyAuthors) {
		t.Fatalf("given authors over the limit: %q, %v", res.Status, res.Err)
	}
	if got := (*Options)(nil).AuthorLimit(); got != DefaultMaxAuthorDomains {
		t.Errorf("nil options: limit %d", got)
	}
}
