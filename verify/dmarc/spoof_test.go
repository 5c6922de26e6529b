package dmarc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/domain"
	"github.com/authmilter/authmilter/verify"
)

// Issue #17: a spoofer's own DNS must never decide the verdict on mail that
// forges someone else's Author Domain. These tests inject temporary failures
// into the sender's names and check that the result stays fail, and that
// those names are not even asked.

// TestSpoofersDNSCannotDecide: From victim.example (p=reject), with an SPF
// temperror for attacker.example or a DKIM pass of d=attacker.example, and
// _dmarc.attacker.example failing, timing out or absent: always fail, and no
// query at attacker.example's _dmarc name.
func TestSpoofersDNSCannotDecide(t *testing.T) {
	t.Parallel()
	ways := map[string]func(*dnstest.Resolver){
		"SERVFAIL": func(r *dnstest.Resolver) { r.Fail["_dmarc.attacker.example"] = dnstest.ServFail },
		"timeout":  func(r *dnstest.Resolver) { r.Fail["_dmarc.attacker.example"] = dnstest.Timeout },
		"NXDOMAIN": func(*dnstest.Resolver) {},
	}
	vectors := map[string]Args{
		"SPF temperror": {From: from("ceo@victim.example"),
			SPF: SPF{Status: verify.StatusTemperror, Domain: "attacker.example", Identity: IdentityMailFrom}},
		"attacker DKIM pass": {From: from("ceo@victim.example"),
			SPF:  SPF{Status: verify.StatusNone, Domain: "attacker.example", Identity: IdentityMailFrom},
			DKIM: []DKIM{dkimPass("attacker.example")}},
	}
	for vn, args := range vectors {
		for wn, mutate := range ways {
			for _, finder := range []OrgDomainFinder{TreeWalk{}, PSL{}} {
				t.Run(vn+"/"+wn+"/"+fmt.Sprint(finder), func(t *testing.T) {
					t.Parallel()
					r := &dnstest.Resolver{
						TXT:  map[string][]string{"_dmarc.victim.example": {"v=DMARC1; p=reject"}},
						Fail: map[string]dnstest.Failure{"attacker.example": dnstest.ServFail},
					}
					mutate(r)
					got := Evaluate(context.Background(), r, args, &Options{Finder: finder, Rand: noRand(t)})
					checkResult(t, got, want{result: verify.StatusFail, org: "victim.example", policy: PolicyReject,
						disposition: PolicyReject, skipped: 1})
					for _, q := range r.Queries() {
						if strings.Contains(q, "attacker") {
							t.Errorf("asked %s: the sender's DNS must not be consulted", q)
						}
					}
				})
			}
		}
	}
}

// TestOwnDNSStillDecides: the lookups the RFC requires still leave the
// verdict open when they fail: the Author Domain's own _dmarc, and the walk
// from a DKIM pass of d=mail.victim.example (it could align).
func TestOwnDNSStillDecides(t *testing.T) {
	t.Parallel()
	reject := map[string][]string{"_dmarc.victim.example": {"v=DMARC1; p=reject"}}
	tests := []struct {
		name string
		fail string
		args Args
		want want
	}{
		{"author's _dmarc fails", "_dmarc.victim.example",
			Args{From: from("ceo@victim.example"), DKIM: []DKIM{dkimPass("attacker.example")}},
			want{result: verify.StatusTemperror, err: dnscache.ErrTemporary, disposition: PolicyNone}},
		{"walk from d=mail.victim.example fails", "_dmarc.mail.victim.example",
			Args{From: from("ceo@victim.example"), DKIM: []DKIM{dkimPass("mail.victim.example")}},
			want{result: verify.StatusTemperror, err: dnscache.ErrTemporary, disposition: PolicyNone}},
		{"SPF temperror of a subdomain that could align", "",
			Args{From: from("ceo@victim.example"), SPF: SPF{Status: verify.StatusTemperror, Domain: "bounce.victim.example"}},
			want{result: verify.StatusTemperror, err: ErrDNS, reason: "could align", queries: []string{"TXT _dmarc.victim.example", "TXT _dmarc.example"}}},
		{"SPF temperror of the Organizational Domain, author below it", "",
			Args{From: from("ceo@news.victim.example"), SPF: SPF{Status: verify.StatusTemperror, Domain: "victim.example"}},
			want{result: verify.StatusTemperror, err: ErrDNS}},
		{"SPF temperror under a sibling of the author: cannot align", "",
			Args{From: from("ceo@news.victim.example"), SPF: SPF{Status: verify.StatusTemperror, Domain: "x.victim.example.net"}},
			want{result: verify.StatusFail, disposition: PolicyReject, skipped: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &dnstest.Resolver{TXT: reject, Fail: map[string]dnstest.Failure{}}
			if tc.fail != "" {
				r.Fail[tc.fail] = dnstest.ServFail
			}
			got := Evaluate(context.Background(), r, tc.args, &Options{Rand: noRand(t)})
			checkResult(t, got, tc.want)
			if tc.want.queries != nil && !slices.Equal(r.Queries(), tc.want.queries) {
				t.Errorf("queries\n got %q\nwant %q", r.Queries(), tc.want.queries)
			}
		})
	}
}

// spoofLabels build the random names of the property test: few enough
// that authors and identifiers often share labels and ancestors.
var spoofLabels = []string{"a", "b", "mail", "victim", "attacker", "bank", "example", "com"}

func randomName(rng *rand.Rand, minLabels int) string {
	n := minLabels + rng.IntN(4)
	l := make([]string, n)
	for i := range l {
		l[i] = spoofLabels[rng.IntN(len(spoofLabels))]
	}
	// The right-most labels come from a short list so that most pairs
	// share a TLD (the case the bug was in).
	l[n-1] = []string{"example", "com"}[rng.IntN(2)]
	return strings.Join(l, ".")
}

// ancestors returns d and each of its parents.
func ancestors(d string) []string {
	var out []string
	for {
		out = append(out, d)
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return out
		}
		d = d[i+1:]
	}
}

// related reports whether a failure at name may legitimately leave the
// verdict open: name is the Author Domain's Organizational Domain, one of
// its parents, or a name under it.
func related(name, org string) bool {
	return domain.IsSameOrUnder(org, name) || domain.IsSameOrUnder(name, org)
}

// randomIdentifier returns an identifier domain: unrelated to author, or
// (one time in two) an ancestor of author with up to two labels added, so
// that relaxed alignment, psd records and failures below the
// Organizational Domain are all exercised.
func randomIdentifier(rng *rand.Rand, author string) string {
	if rng.IntN(2) == 0 {
		return randomName(rng, 1)
	}
	up := ancestors(author)
	d := up[rng.IntN(len(up))]
	n := rng.IntN(3)
	if rng.IntN(8) == 0 {
		n = 7 // deep enough for the walk's jump to seven labels (§4.10 step 4)
	}
	for ; n > 0; n-- {
		d = spoofLabels[rng.IntN(len(spoofLabels))] + "." + d
	}
	return d
}

// randomRecord returns a DMARC record with random psd, p and modes.
func randomRecord(rng *rand.Rand) string {
	rec := "v=DMARC1; p=" + []string{"reject", "quarantine", "none"}[rng.IntN(3)]
	rec += []string{"", "; psd=y", "; psd=n"}[rng.IntN(3)]
	rec += []string{"", "; aspf=s", "; adkim=s"}[rng.IntN(3)]
	return rec
}

// randomWorld is a random message and DNS: an Author Domain, SPF and DKIM
// results for random identifiers (half of them near the Author Domain),
// DMARC records and A records at random names among their ancestors.
type randomWorld struct {
	author string
	args   Args
	names  []string // every ancestor of the author and the identifiers
	txt    map[string][]string
	a      map[string][]string
}

func newRandomWorld(rng *rand.Rand) randomWorld {
	var w randomWorld
	w.author = randomName(rng, 2)
	w.args = Args{From: []string{"x@" + w.author}}
	results := []verify.Status{verify.StatusPass, verify.StatusTemperror, verify.StatusFail, verify.StatusNone}
	w.names = ancestors(w.author)
	if rng.IntN(4) > 0 {
		d := randomIdentifier(rng, w.author)
		w.args.SPF = SPF{Status: results[rng.IntN(len(results))], Domain: d, Identity: IdentityMailFrom}
		w.names = append(w.names, ancestors(d)...)
	}
	for n := rng.IntN(4); n > 0; n-- {
		d := randomIdentifier(rng, w.author)
		w.args.DKIM = append(w.args.DKIM, DKIM{Status: results[rng.IntN(len(results))], Domain: d, Selector: "s"})
		w.names = append(w.names, ancestors(d)...)
	}
	slices.Sort(w.names)
	w.names = slices.Compact(w.names)
	w.txt = map[string][]string{}
	for _, n := range w.names {
		if rng.IntN(3) == 0 {
			w.txt["_dmarc."+n] = []string{randomRecord(rng)}
		}
	}
	// Every name exists (has an A record) unless chosen otherwise, so that
	// np's existence query has both answers.
	w.a = map[string][]string{}
	for _, n := range w.names {
		if rng.IntN(4) > 0 {
			w.a[n] = []string{"192.0.2.1"}
		}
	}
	return w
}

// checkSpoofProperty builds a random world from seed and checks the
// property of issue #17 with finder: a temporary failure at every name
// that is neither the Author Domain's Organizational Domain, nor one of its
// parents, nor under it, changes nothing (not fail into temperror, not
// anything else), and no such name is even asked.
//
// It returns whether the world was one the bug was about: fail without
// the failures, some failure injected, and a walk skipped.
func checkSpoofProperty(t *testing.T, seed uint64, finder OrgDomainFinder) bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	rw := newRandomWorld(rng)
	author, args, names, txt, a := rw.author, rw.args, rw.names, rw.txt, rw.a
	opts := &Options{Finder: finder, Rand: func(int) int { return 0 }}
	base := Evaluate(context.Background(), &dnstest.Resolver{TXT: txt, A: a}, args, opts)
	org := base.OrgDomain
	if org == "" {
		t.Fatalf("seed %d: no Organizational Domain for %s (%s)", seed, author, base.Reason)
	}
	r := &dnstest.Resolver{TXT: txt, A: a, Fail: map[string]dnstest.Failure{}}
	var failed []string
	for i, n := range names {
		if related(n, org) {
			continue
		}
		f := []dnstest.Failure{dnstest.ServFail, dnstest.Timeout}[i%2]
		r.Fail[n] = f
		r.Fail["_dmarc."+n] = f
		failed = append(failed, n)
	}
	got := Evaluate(context.Background(), r, args, opts)
	if got.Status != base.Status || got.Disposition != base.Disposition || got.OrgDomain != base.OrgDomain {
		t.Fatalf("seed %d, %s, author %s (org %s), SPF %+v, DKIM %+v, records %q:\nfailures at %q changed %s/%s (%s) into %s/%s (%s)",
			seed, finder, author, org, args.SPF, args.DKIM, txt, failed, base.Status, base.Disposition, base.Reason, got.Status, got.Disposition, got.Reason)
	}
	for _, q := range r.Queries() {
		name := strings.TrimPrefix(q[strings.IndexByte(q, ' ')+1:], "_dmarc.")
		if !related(name, org) {
			t.Fatalf("seed %d, %s, author %s (org %s): asked %s, which cannot change the result", seed, finder, author, org, q)
		}
	}
	return base.Status == verify.StatusFail && len(failed) > 0 && got.SkippedWalks > 0
}

// TestSpoofProperty runs the property over a fixed set of random worlds.
func TestSpoofProperty(t *testing.T) {
	t.Parallel()
	n := uint64(3000)
	if testing.Short() {
		n = 300
	}
	interesting := 0
	for seed := range n {
		if checkSpoofProperty(t, seed, TreeWalk{}) {
			interesting++
		}
		checkSpoofProperty(t, seed, PSL{})
	}
	// The worlds must often be the spoof the issue is about, or the
	// property holds for want of trying.
	if interesting < int(n)/10 {
		t.Errorf("only %d of %d worlds failed DMARC with a skipped walk and injected failures", interesting, n)
	}
	t.Logf("%d of %d worlds: fail, with failures injected at unrelated names and walks skipped", interesting, n)
}

// FuzzSpoofProperty lets the fuzzer pick the worlds.
func FuzzSpoofProperty(f *testing.F) {
	for _, s := range []uint64{0, 1, 17, 1 << 40} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		checkSpoofProperty(t, seed, TreeWalk{})
		checkSpoofProperty(t, seed, PSL{})
	})
}
