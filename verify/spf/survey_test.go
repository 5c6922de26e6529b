package spf_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify/spf"
)

func TestSurveyDomain(t *testing.T) {
	t.Parallel()
	z := zone(map[string][]string{
		"example.com":       {"v=spf1 a mx include:_i.example.com ptr redirect=_r.example.com"},
		"_i.example.com":    {"v=spf1 ip4:192.0.2.0/24 a:none.example.com exists:%{i}.x.example.com ~all"},
		"_r.example.com":    {"v=spf1 mx:none2.example.com -all redirect=ignored.example.com"},
		"loop.example.com":  {"v=spf1 include:loop.example.com -all"},
		"two.example.com":   {"v=spf1 -all", "v=spf1 mx -all"},
		"bad.example.com":   {"v=spf1 mx  ip4:300.1.1.1 -all"},
		"inc.example.com":   {"v=spf1 include:bad.example.com include:nothing.example.com -all"},
		"other.example.com": {"not spf"},
	})
	ctx := context.Background()
	s, err := spf.SurveyDomain(ctx, z, "Example.COM.")
	if err != nil {
		t.Fatal(err)
	}
	want := &spf.Survey{
		Domain:  "example.com",
		Record:  "v=spf1 a mx include:_i.example.com ptr redirect=_r.example.com",
		Lookups: 8,
		LookupTerms: []string{"example.com: a", "example.com: mx", "example.com: include:_i.example.com",
			"_i.example.com: a:none.example.com", "_i.example.com: exists:%{i}.x.example.com",
			"example.com: ptr", "example.com: redirect=_r.example.com", "_r.example.com: mx:none2.example.com"},
		VoidLookups: 2,
		VoidTerms:   []string{"_i.example.com: a:none.example.com", "_r.example.com: mx:none2.example.com"},
		MacroTerms:  []string{"_i.example.com: exists:%{i}.x.example.com"},
		PTR:         []string{"example.com: ptr"},
		All:         "-all",
		AllDomain:   "_r.example.com",
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}

	if s, err := spf.SurveyDomain(ctx, z, "loop.example.com"); err != nil || s.Lookups != 1 || len(s.Problems) != 1 || !errors.Is(s.Problems[0], spf.ErrTooManyLookups) {
		t.Errorf("loop: %+v, %v", s, err)
	}
	if _, err := spf.SurveyDomain(ctx, z, "two.example.com"); !errors.Is(err, spf.ErrMultipleRecords) {
		t.Errorf("two records: %v", err)
	}
	if _, err := spf.SurveyDomain(ctx, z, "other.example.com"); !errors.Is(err, spf.ErrNoRecord) {
		t.Errorf("no SPF record: %v", err)
	}
	if _, err := spf.SurveyDomain(ctx, z, "nothing.example.com"); !errors.Is(err, spf.ErrNoRecord) {
		t.Errorf("NXDOMAIN: %v", err)
	}
	_, err = spf.SurveyDomain(ctx, z, "bad.example.com")
	var syn *spf.SyntaxError
	if !errors.As(err, &syn) || !errors.Is(err, spf.ErrSyntax) || syn.Term != "ip4:300.1.1.1" || syn.Offset != 11 {
		t.Errorf("syntax error: %v (%+v)", err, syn)
	}
	s, err = spf.SurveyDomain(ctx, z, "inc.example.com")
	if err != nil || len(s.Problems) != 2 || !errors.Is(s.Problems[0], spf.ErrSyntax) || !errors.Is(s.Problems[1], spf.ErrIncludeNone) {
		t.Errorf("problems below: %v, %v", s.Problems, err)
	}

	z.Fail["_i.example.com"] = dnstest.ServFail
	s, err = spf.SurveyDomain(ctx, z, "example.com")
	if err != nil || len(s.Problems) != 1 || !errors.Is(s.Problems[0], spf.ErrDNS) {
		t.Errorf("temporary failure below: %v, %v", s.Problems, err)
	}
	z.Fail["example.com"] = dnstest.ServFail
	if _, err := spf.SurveyDomain(ctx, z, "example.com"); !errors.Is(err, spf.ErrDNS) {
		t.Errorf("temporary failure: %v", err)
	}
}

// The survey counts as evaluation does when nothing matches before the
// end: check_host() for an address no term lists makes the same number of
// DNS-querying terms and void lookups.
func TestSurveyCountsAsEvaluation(t *testing.T) {
	t.Parallel()
	for _, rec := range []string{
		"v=spf1 a:mail.example.com mx:example.com include:_i.example.com redirect=_r.example.com",
		"v=spf1 a:none.example.com a:none2.example.com -all",
		"v=spf1 a mx -all",
		"v=spf1 include:_i.example.com include:_r.example.com ~all",
		"v=spf1 mx:mail.example.com exists:none.example.com ?all",
		"v=spf1 include:_a.example.com include:_b.example.com -all", // _c counted twice
	} {
		z := zone(map[string][]string{
			"test.example.com": {rec},
			"_i.example.com":   {"v=spf1 ip4:192.0.2.0/24 a:none3.example.com ~all"},
			"_r.example.com":   {"v=spf1 mx:example.com a:other.example.com -all"},
			"_a.example.com":   {"v=spf1 include:_c.example.com -all"},
			"_b.example.com":   {"v=spf1 include:_c.example.com -all"},
			"_c.example.com":   {"v=spf1 a:mail.example.com mx:example.com ~all"},
		})
		s, err := spf.SurveyDomain(context.Background(), z, "test.example.com")
		if err != nil {
			t.Fatal(err)
		}
		res := spf.Verify(context.Background(), z, spf.Args{
			IP: netip.MustParseAddr("100.64.0.1"), MailFromLocal: "a", MailFromDomain: "test.example.com", HELO: "h.example.net",
		})
		if res.Lookups != s.Lookups || res.VoidLookups != s.VoidLookups {
			t.Errorf("%q: evaluation %d lookups %d void (%s %v), survey %d and %d",
				rec, res.Lookups, res.VoidLookups, res.Status, res.Err, s.Lookups, s.VoidLookups)
		}
	}
}

// A tree that includes the same records over and over is not walked
// exponentially often: the count stops past 100.
func TestSurveyStops(t *testing.T) {
	t.Parallel()
	txt := map[string][]string{}
	for i := 0; i < 30; i++ {
		next := fmt.Sprintf("d%d.example.com", i+1)
		txt[fmt.Sprintf("d%d.example.com", i)] = []string{"v=spf1 include:" + next + " include:" + next + " -all"}
	}
	txt["d30.example.com"] = []string{"v=spf1 -all"}
	s, err := spf.SurveyDomain(context.Background(), zone(txt), "d0.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if s.Lookups <= 100 || s.Lookups > 200 || len(s.Problems) != 1 || !errors.Is(s.Problems[0], spf.ErrTooManyLookups) {
		t.Errorf("%d lookups, problems %v", s.Lookups, s.Problems)
	}
}
