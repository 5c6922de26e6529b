package dmarc

import (
	"context"
	"slices"
	"testing"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify"
)

// TestRFCAlignmentExamples runs the identifier alignment examples of RFC
// 9989 Appendix B.1 and RFC 7489 Appendix B.1 with both Organizational
// Domain methods, which must agree on them.
func TestRFCAlignmentExamples(t *testing.T) {
	t.Parallel()
	zone := map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject"}}
	tests := []struct {
		name     string
		from     string
		spf      string
		dkim     string
		want     Alignment
		wantPass bool
	}{
		{"B.1.1 example 1: SPF in strict alignment", "sender@example.com", "example.com", "", AlignedStrict, true},
		{"B.1.1 example 2: SPF in relaxed alignment", "sender@example.com", "child.example.com", "", AlignedRelaxed, true},
		{"B.1.1 example 3: no SPF identifier alignment", "sender@child.example.com", "example.net", "", NotAligned, false},
		{"B.1.2 example 1: DKIM in strict alignment", "sender@example.com", "", "example.com", AlignedStrict, true},
		{"B.1.2 example 2: DKIM in relaxed alignment", "sender@child.example.com", "", "example.com", AlignedRelaxed, true},
		{"B.1.2 example 3: no DKIM identifier alignment (RFC 9989)", "sender@child.example.com", "", "example.net", NotAligned, false},
		{"B.1.2 example 3: no DKIM identifier alignment (RFC 7489)", "sender@child.example.com", "", "sample.net", NotAligned, false},
	}
	for _, finder := range []OrgDomainFinder{TreeWalk{}, PSL{}} {
		for _, tc := range tests {
			t.Run(finder.(interface{ String() string }).String()+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				args := Args{From: []string{tc.from}}
				if tc.spf != "" {
					args.SPF = pass(tc.spf)
				}
				if tc.dkim != "" {
					args.DKIM = []DKIM{dkimPass(tc.dkim)}
				}
				res := Evaluate(context.Background(), &dnstest.Resolver{TXT: zone}, args, &Options{Finder: finder})
				var got Alignment
				if tc.spf != "" {
					got = res.SPF.Alignment
				} else {
					got = res.DKIM[0].Alignment
				}
				if got != tc.want {
					t.Errorf("alignment %q, want %q", got, tc.want)
				}
				if (res.Status == verify.StatusPass) != tc.wantPass {
					t.Errorf("Result %q (%s)", res.Status, res.Reason)
				}
			})
		}
	}
}

// TestRFCRecordExamples parses the Domain Owner records of RFC 9989
// Appendix B.2 and RFC 7489 Appendix B.2.
func TestRFCRecordExamples(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		txt    string
		policy Policy
		rua    []string
		ruf    []string
		pct    int
		testng bool
	}{
		{"9989 B.2.1 monitoring mode", "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com",
			PolicyNone, []string{"mailto:dmarc-feedback@example.com"}, nil, 100, false},
		{"9989 B.2.2 per-message failure reports", "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; ruf=mailto:auth-reports@example.com",
			PolicyNone, []string{"mailto:dmarc-feedback@example.com"}, []string{"mailto:auth-reports@example.com"}, 100, false},
		{"9989 B.2.3 third-party failure reports", "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; ruf=mailto:auth-reports@thirdparty.example.net",
			PolicyNone, []string{"mailto:dmarc-feedback@example.com"}, []string{"mailto:auth-reports@thirdparty.example.net"}, 100, false},
		{"9989 B.2.3 report authorization record", "v=DMARC1;", "", nil, nil, 100, false},
		{"9989 B.2.4 overriding destinations", "v=DMARC1; rua=mailto:aggregate-reports@thirdparty.example.net; ruf=mailto:failure-reports@thirdparty.example.net",
			"", []string{"mailto:aggregate-reports@thirdparty.example.net"}, []string{"mailto:failure-reports@thirdparty.example.net"}, 100, false},
		{"9989 B.2.5 subdomain testing", "v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net; t=y",
			PolicyQuarantine, []string{"mailto:dmarc-feedback@example.com", "mailto:tld-test@thirdparty.example.net"}, nil, 100, true},
		{"9989 B.2.5 subdomain enforcement", "v=DMARC1; p=reject; rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net",
			PolicyReject, []string{"mailto:dmarc-feedback@example.com", "mailto:tld-test@thirdparty.example.net"}, nil, 100, false},
		{"7489 B.2.4 subdomain, sampling, report size", "v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net!10m; pct=25",
			PolicyQuarantine, []string{"mailto:dmarc-feedback@example.com", "mailto:tld-test@thirdparty.example.net"}, nil, 25, false},
		{"9989 B.3.1 receiver example record", "v=DMARC1; p=reject; aspf=r; rua=mailto:dmarc-feedback@example.com",
			PolicyReject, []string{"mailto:dmarc-feedback@example.com"}, nil, 100, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseRecord(tc.txt)
			if err != nil {
				t.Fatal(err)
			}
			if r.Policy != tc.policy || !slices.Equal(r.RUA, tc.rua) || !slices.Equal(r.RUF, tc.ruf) ||
				r.Percent != tc.pct || r.Testing != tc.testng || len(r.Invalid) != 0 {
				t.Errorf("got %+v", r)
			}
		})
	}
}

// TestRFCReceiverExamples evaluates the Mail Receiver examples: RFC 9989
// Appendix B.3.1 (= RFC 7489 Appendix B.3), B.4.1–B.4.3, B.2.5 (t=y) and
// RFC 7489 B.2.4 (pct=25).
func TestRFCReceiverExamples(t *testing.T) {
	t.Parallel()
	b4 := map[string][]string{
		"_dmarc.example.com":         {"v=DMARC1; p=reject"},
		"_dmarc.signing.example.com": {"v=DMARC1; p=reject"},
	}
	bank := map[string][]string{
		"_dmarc.bank.example":       {"v=DMARC1; p=reject; psd=y"},
		"_dmarc.giant.bank.example": {"v=DMARC1; p=reject"},
	}
	sub := "v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net"
	tests := []struct {
		name string
		txt  map[string][]string
		args Args
		rand func(int) int
		want want
	}{
		{
			name: "9989 B.3.1: SPF and DKIM both align",
			txt:  map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject; aspf=r; rua=mailto:dmarc-feedback@example.com"}},
			args: Args{From: from("someone@example.com"), SPF: pass("mail.example.com"), DKIM: []DKIM{dkimPass("example.com")}},
			want: want{result: verify.StatusPass, policy: PolicyReject, disposition: PolicyNone, spf: al(AlignedRelaxed), dkim: []Alignment{AlignedStrict}},
		},
		{
			name: "9989 B.3.1: nothing aligns, reject applies",
			txt:  map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject; aspf=r; rua=mailto:dmarc-feedback@example.com"}},
			args: Args{From: from("someone@example.com"), SPF: pass("example.net"), DKIM: []DKIM{dkimPass("example.org")}},
			want: want{result: verify.StatusFail, policy: PolicyReject, disposition: PolicyReject},
		},
		{
			name: "9989 B.4.1: simple organizational and policy example",
			txt:  b4,
			args: Args{From: from("someone@example.com"), SPF: pass("example.com"), DKIM: []DKIM{dkimPass("signing.example.com")}},
			want: want{result: verify.StatusPass, org: "example.com", policyDomain: "example.com", applied: TagP,
				spf: al(AlignedStrict), dkim: []Alignment{AlignedRelaxed},
				queries: []string{"TXT _dmarc.example.com", "TXT _dmarc.com", "TXT _dmarc.signing.example.com"}},
		},
		{
			name: "9989 B.4.2: deep tree walk",
			txt:  b4,
			args: Args{From: from("someone@a.b.c.d.e.f.g.h.i.j.k.example.com"), SPF: pass("example.com"), DKIM: []DKIM{dkimPass("signing.example.com")}},
			want: want{result: verify.StatusPass, org: "example.com", policyDomain: "example.com", applied: TagP,
				spf: al(AlignedRelaxed), dkim: []Alignment{AlignedRelaxed},
				queries: []string{
					"TXT _dmarc.a.b.c.d.e.f.g.h.i.j.k.example.com", "TXT _dmarc.g.h.i.j.k.example.com",
					"TXT _dmarc.h.i.j.k.example.com", "TXT _dmarc.i.j.k.example.com", "TXT _dmarc.j.k.example.com",
					"TXT _dmarc.k.example.com", "TXT _dmarc.example.com", "TXT _dmarc.com",
					"TXT _dmarc.signing.example.com",
				}},
		},
		{
			name: "9989 B.4.2: deep tree walk, failing: the org domain's p (no sp) applies",
			txt:  b4,
			args: Args{From: from("someone@a.b.c.d.e.f.g.h.i.j.k.example.com")},
			want: want{result: verify.StatusFail, policyDomain: "example.com", applied: TagP, policy: PolicyReject, disposition: PolicyReject},
		},
		{
			name: "9989 B.4.3: PSD record, SPF aligns and DKIM does not",
			txt:  bank,
			args: Args{From: from("someone@giant.bank.example"), SPF: pass("mail.giant.bank.example"), DKIM: []DKIM{dkimPass("mail.mega.bank.example")}},
			// The RFC walks from mail.mega.bank.example to show that it
			// does not align (its Organizational Domain is
			// mega.bank.example); that walk cannot change the outcome, as
			// giant.bank.example is not mail.mega.bank.example's parent, so
			// it is not made (issue #17): same result, two queries fewer.
			want: want{result: verify.StatusPass, org: "giant.bank.example", policyDomain: "giant.bank.example", applied: TagP,
				spf: al(AlignedRelaxed), dkim: []Alignment{NotAligned}, skipped: 1,
				queries: []string{"TXT _dmarc.giant.bank.example", "TXT _dmarc.bank.example",
					"TXT _dmarc.mail.giant.bank.example"}},
		},
		{
			name: "9989 B.2.5: t=y, quarantine is not applied",
			txt:  map[string][]string{"_dmarc.test.example.com": {sub + "; t=y"}},
			args: Args{From: from("someone@test.example.com")},
			want: want{result: verify.StatusFail, policy: PolicyQuarantine, disposition: PolicyNone, reduced: ReducedTesting},
		},
		{
			name: "7489 B.2.4: pct=25, draw 24 is in the sample",
			txt:  map[string][]string{"_dmarc.test.example.com": {sub + "!10m; pct=25"}},
			args: Args{From: from("someone@test.example.com")},
			rand: func(int) int { return 24 },
			want: want{result: verify.StatusFail, policy: PolicyQuarantine, disposition: PolicyQuarantine, sampled: true},
		},
		{
			name: "7489 B.2.4: pct=25, draw 25 is not",
			txt:  map[string][]string{"_dmarc.test.example.com": {sub + "!10m; pct=25"}},
			args: Args{From: from("someone@test.example.com")},
			rand: func(int) int { return 25 },
			want: want{result: verify.StatusFail, policy: PolicyQuarantine, disposition: PolicyNone, sampled: true, reduced: ReducedSampling},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &dnstest.Resolver{TXT: tc.txt}
			rnd := tc.rand
			if rnd == nil {
				rnd = noRand(t)
			}
			got := Evaluate(context.Background(), r, tc.args, &Options{Finder: TreeWalk{Sequential: true}, Rand: rnd})
			checkResult(t, got, tc.want)
			if tc.want.queries != nil && !slices.Equal(r.Queries(), tc.want.queries) {
				t.Errorf("queries\n got %q\nwant %q", r.Queries(), tc.want.queries)
			}
			cr := &dnstest.Resolver{TXT: tc.txt}
			if con := Evaluate(context.Background(), cr, tc.args, &Options{Rand: rnd}); !sameResult(got, con) {
				t.Errorf("concurrent walk: %s (%s), sequential %s (%s)", con.Status, con.Reason, got.Status, got.Reason)
			}
			checkConcurrentLog(t, cr.Queries(), nil, r.Queries())
		})
	}
}
