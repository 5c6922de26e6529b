package dmarc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/conformance"
	"github.com/authmilter/authmilter/verify"
)

// treewalkSuite is ../shared/conformance/dmarc-treewalk/cases.yml.
type treewalkSuite struct {
	Cases []treewalkCase `yaml:"cases"`
}

type treewalkCase struct {
	ID      string              `yaml:"id"`
	Source  string              `yaml:"source"`
	Records map[string][]string `yaml:"records"`
	Input   struct {
		AuthorDomain string `yaml:"author_domain"`
		SPFDomain    string `yaml:"spf_domain"`
		DKIMDomain   string `yaml:"dkim_domain"`
	} `yaml:"input"`
	Expect struct {
		Queries        map[string][]string `yaml:"queries"`
		OrgDomain      map[string]string   `yaml:"org_domain"`
		PolicyDomain   string              `yaml:"policy_domain"`
		AlignedRelaxed map[string]bool     `yaml:"aligned_relaxed"`
	} `yaml:"expect"`
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestTreeWalkConformance runs every case of the RFC 9989 tree-walk suite:
// the exact ordered _dmarc queries of each walk (from the resolver's query
// log, nothing cached), the Organizational Domains, the Policy Domain, and
// relaxed alignment of the given identifiers.
func TestTreeWalkConformance(t *testing.T) {
	dir := conformance.Dir(t, "dmarc-treewalk")
	data, err := os.ReadFile(filepath.Join(dir, "cases.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var suite treewalkSuite
	if err := yaml.Unmarshal(data, &suite); err != nil {
		t.Fatalf("cases.yml: %v", err)
	}
	if len(suite.Cases) == 0 {
		t.Fatal("cases.yml: no cases")
	}
	passed, failed := 0, 0
	for _, tc := range suite.Cases {
		ok := t.Run(tc.ID, func(t *testing.T) { runTreewalkCase(t, tc) })
		if ok {
			passed++
		} else {
			failed++
		}
	}
	fmt.Printf("dmarc treewalk: %d passed, %d failed\n", passed, failed)
}

func runTreewalkCase(t *testing.T, tc treewalkCase) {
	// The exact ordered queries are those of the walk asked one name at a
	// time; everything else is checked with both walks, and the concurrent
	// one must ask what the sequential one does, plus at most names above.
	for _, finder := range []TreeWalk{{Sequential: true}, {}} {
		t.Run(finder.String(), func(t *testing.T) { runTreewalkCaseWith(t, tc, finder) })
	}
}

func runTreewalkCaseWith(t *testing.T, tc treewalkCase, finder TreeWalk) {
	ctx := context.Background()
	zone := func() *dnstest.Resolver { return &dnstest.Resolver{TXT: tc.Records} }
	for _, start := range sortedKeys(tc.Expect.Queries) {
		r := zone()
		if _, err := finder.OrgDomain(ctx, r, start); err != nil {
			t.Errorf("walk %s: %v", start, err)
			continue
		}
		var want []string
		for _, q := range tc.Expect.Queries[start] {
			want = append(want, "TXT "+q)
		}
		if !finder.Sequential {
			checkConcurrentLog(t, r.Queries(), nil, want)
		} else if got := r.Queries(); !slices.Equal(got, want) {
			t.Errorf("walk %s: queries\n got %q\nwant %q", start, got, want)
		}
	}
	for _, d := range sortedKeys(tc.Expect.OrgDomain) {
		got, err := finder.OrgDomain(ctx, zone(), d)
		if err != nil || got != tc.Expect.OrgDomain[d] {
			t.Errorf("OrgDomain(%s) = %q, %v; want %q", d, got, err, tc.Expect.OrgDomain[d])
		}
	}
	if tc.Expect.PolicyDomain != "" {
		disc, err := finder.Discover(ctx, zone(), tc.Input.AuthorDomain)
		if err != nil || disc.PolicyDomain != tc.Expect.PolicyDomain || disc.Record == nil {
			t.Errorf("Discover(%s): policy domain %q (record %v), %v; want %q",
				tc.Input.AuthorDomain, disc.PolicyDomain, disc.Record != nil, err, tc.Expect.PolicyDomain)
		}
	}
	if len(tc.Expect.AlignedRelaxed) > 0 {
		args := Args{From: []string{"someone@" + tc.Input.AuthorDomain}}
		if tc.Input.SPFDomain != "" {
			args.SPF = SPF{Status: verify.StatusPass, Domain: tc.Input.SPFDomain, Identity: IdentityMailFrom}
		}
		if tc.Input.DKIMDomain != "" {
			args.DKIM = []DKIM{{Status: verify.StatusPass, Domain: tc.Input.DKIMDomain, Selector: "s"}}
		}
		res := Evaluate(ctx, zone(), args, &Options{Finder: finder})
		if res.Record == nil {
			t.Fatalf("Evaluate: no record: %+v", res)
		}
		if res.Record.ASPF != ModeRelaxed || res.Record.ADKIM != ModeRelaxed {
			t.Fatalf("record %q is not relaxed", res.Record.Raw)
		}
		if want, ok := tc.Expect.AlignedRelaxed["spf"]; ok {
			if got := res.SPF != nil && res.SPF.Alignment != NotAligned; got != want {
				t.Errorf("SPF %s aligned = %v, want %v (%+v)", tc.Input.SPFDomain, got, want, res.SPF)
			}
		}
		if want, ok := tc.Expect.AlignedRelaxed["dkim"]; ok {
			if got := len(res.DKIM) == 1 && res.DKIM[0].Alignment != NotAligned; got != want {
				t.Errorf("DKIM %s aligned = %v, want %v (%+v)", tc.Input.DKIMDomain, got, want, res.DKIM)
			}
		}
	}
}

// TestTreeWalk covers the walk's branches beyond the suite.
func TestTreeWalk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		txt       map[string][]string
		fail      map[string]dnstest.Failure
		start     string
		queries   []string
		org       string
		policy    string // expected Discover policy domain ("" = no record)
		discarded []string
		temp      bool
	}{
		{
			name:    "single label",
			start:   "com",
			queries: []string{"_dmarc.com"},
			org:     "com",
		},
		{
			name:    "exactly eight labels shortens to seven like any other",
			start:   "a.b.c.d.e.f.example.com",
			queries: []string{"_dmarc.a.b.c.d.e.f.example.com", "_dmarc.b.c.d.e.f.example.com", "_dmarc.c.d.e.f.example.com", "_dmarc.d.e.f.example.com", "_dmarc.e.f.example.com", "_dmarc.f.example.com", "_dmarc.example.com", "_dmarc.com"},
			org:     "a.b.c.d.e.f.example.com",
		},
		{
			name:    "nine labels jump to seven",
			start:   "x.a.b.c.d.e.f.example.com",
			queries: []string{"_dmarc.x.a.b.c.d.e.f.example.com", "_dmarc.b.c.d.e.f.example.com", "_dmarc.c.d.e.f.example.com", "_dmarc.d.e.f.example.com", "_dmarc.e.f.example.com", "_dmarc.f.example.com", "_dmarc.example.com", "_dmarc.com"},
			org:     "x.a.b.c.d.e.f.example.com",
		},
		{
			name:    "psd=y at the start stops and is its own org domain",
			txt:     map[string][]string{"_dmarc.example": {"v=DMARC1; p=reject; psd=y"}},
			start:   "example",
			queries: []string{"_dmarc.example"},
			org:     "example",
			policy:  "example",
		},
		{
			name:    "psd=y at the start stops the walk before a parent record",
			txt:     map[string][]string{"_dmarc.bank.example": {"v=DMARC1; p=reject; psd=y"}, "_dmarc.example": {"v=DMARC1; p=none"}},
			start:   "bank.example",
			queries: []string{"_dmarc.bank.example"},
			org:     "bank.example",
			policy:  "bank.example",
		},
		{
			name:    "non-DMARC TXT records are ignored",
			txt:     map[string][]string{"_dmarc.example.com": {"v=spf1 -all", "hello", "v=DMARC1; p=reject"}},
			start:   "mail.example.com",
			queries: []string{"_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com"},
			org:     "example.com",
			policy:  "example.com",
		},
		{
			name:      "several records are discarded and the walk goes on",
			txt:       map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject", "v=DMARC1; p=none"}},
			start:     "example.com",
			queries:   []string{"_dmarc.example.com", "_dmarc.com"},
			org:       "example.com",
			discarded: []string{"example.com"},
		},
		{
			name:    "psd=u does not stop the walk",
			txt:     map[string][]string{"_dmarc.mail.example.com": {"v=DMARC1; p=reject; psd=u"}, "_dmarc.example.com": {"v=DMARC1; p=none"}},
			start:   "mail.example.com",
			queries: []string{"_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com"},
			org:     "example.com",
			policy:  "mail.example.com",
		},
		{
			name:    "invalid psd value counts as u",
			txt:     map[string][]string{"_dmarc.mail.example.com": {"v=DMARC1; p=reject; psd=maybe"}},
			start:   "mail.example.com",
			queries: []string{"_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com"},
			org:     "mail.example.com",
			policy:  "mail.example.com",
		},
		{
			name:    "PSD record applies when the org domain has none",
			txt:     map[string][]string{"_dmarc.example": {"v=DMARC1; p=quarantine; psd=y"}},
			start:   "a.b.example",
			queries: []string{"_dmarc.a.b.example", "_dmarc.b.example", "_dmarc.example"},
			org:     "b.example",
			policy:  "example",
		},
		{
			name:    "temporary failure mid-walk",
			fail:    map[string]dnstest.Failure{"_dmarc.example.com": dnstest.ServFail},
			start:   "mail.example.com",
			queries: []string{"_dmarc.mail.example.com", "_dmarc.example.com"},
			temp:    true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &dnstest.Resolver{TXT: tc.txt, Fail: tc.fail}
			d, err := TreeWalk{Sequential: true}.Discover(context.Background(), r, tc.start)
			if got := r.Queries(); !slices.Equal(got, prefixAll("TXT ", tc.queries)) {
				t.Errorf("queries\n got %q\nwant %q", got, prefixAll("TXT ", tc.queries))
			}
			// The concurrent walk decides the same from the same answers.
			cr := &dnstest.Resolver{TXT: tc.txt, Fail: tc.fail}
			cd, cerr := TreeWalk{}.Discover(context.Background(), cr, tc.start)
			checkConcurrentLog(t, cr.Queries(), nil, prefixAll("TXT ", tc.queries))
			if fmt.Sprint(cerr) != fmt.Sprint(err) || cd.OrgDomain != d.OrgDomain || cd.PolicyDomain != d.PolicyDomain ||
				cd.Record != d.Record && (cd.Record == nil || d.Record == nil || cd.Record.Raw != d.Record.Raw) || !slices.Equal(cd.Discarded, d.Discarded) {
				t.Errorf("concurrent walk: %+v, %v; sequential: %+v, %v", cd, cerr, d, err)
			}
			if tc.temp {
				if !errors.Is(err, ErrDNS) || !errors.Is(err, dnscache.ErrTemporary) {
					t.Fatalf("err = %v, want ErrDNS wrapping dnscache.ErrTemporary", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.OrgDomain != tc.org {
				t.Errorf("org domain %q, want %q", d.OrgDomain, tc.org)
			}
			if d.PolicyDomain != tc.policy || (d.Record != nil) != (tc.policy != "") {
				t.Errorf("policy domain %q (record %v), want %q", d.PolicyDomain, d.Record != nil, tc.policy)
			}
			if !slices.Equal(d.Discarded, tc.discarded) {
				t.Errorf("discarded %q, want %q", d.Discarded, tc.discarded)
			}
		})
	}
}

func prefixAll(p string, s []string) []string {
	out := make([]string, 0, len(s))
	for _, x := range s {
		out = append(out, p+x)
	}
	return out
}
