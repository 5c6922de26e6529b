package authres

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/dmarc"
	"github.com/authmilter/authmilter/verify/spf"
)

func TestFromSPF(t *testing.T) {
	t.Parallel()
	ip := netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name string
		in   spf.Result
		want Result
	}{
		{"pass", spf.Result{Result: verify.ResultPass, Identity: spf.IdentityMailFrom, Sender: "a@example.com", Domain: "example.com", IP: ip, Mechanism: "mx"},
			Result{Method: "spf", Value: verify.ResultPass, Comment: "domain of a@example.com designates 192.0.2.1 as permitted sender",
				Reason: "mechanism mx matched", Props: []Property{{"smtp", "mailfrom", "a@example.com"}}}},
		{"fail default", spf.Result{Result: verify.ResultFail, Identity: spf.IdentityMailFrom, Sender: "a@example.com", IP: ip, Mechanism: "default", Explanation: "go away\r\nX: y"},
			Result{Method: "spf", Value: verify.ResultFail, Comment: "domain of a@example.com does not designate 192.0.2.1 as permitted sender",
				Reason: "no mechanism matched", Props: []Property{{"smtp", "mailfrom", "a@example.com"}}}},
		{"softfail", spf.Result{Result: verify.ResultSoftfail, Identity: spf.IdentityMailFrom, Sender: "a@example.com", IP: ip, Mechanism: "~all"},
			Result{Method: "spf", Value: verify.ResultSoftfail, Comment: "domain of transitioning a@example.com does not designate 192.0.2.1 as permitted sender",
				Reason: "mechanism ~all matched", Props: []Property{{"smtp", "mailfrom", "a@example.com"}}}},
		{"neutral", spf.Result{Result: verify.ResultNeutral, Identity: spf.IdentityMailFrom, Sender: "a@example.com", IP: ip, Mechanism: "?all"},
			Result{Method: "spf", Value: verify.ResultNeutral, Comment: "192.0.2.1 is neither permitted nor denied by domain of a@example.com",
				Reason: "mechanism ?all matched", Props: []Property{{"smtp", "mailfrom", "a@example.com"}}}},
		{"none", spf.Result{Result: verify.ResultNone, Identity: spf.IdentityMailFrom, Sender: "a@example.com", IP: ip, Err: spf.ErrNoRecord},
			Result{Method: "spf", Value: verify.ResultNone, Comment: "domain of a@example.com does not designate permitted sender hosts",
				Reason: "no SPF record", Props: []Property{{"smtp", "mailfrom", "a@example.com"}}}},
		{"temperror", spf.Result{Result: verify.ResultTemperror, Identity: spf.IdentityMailFrom, Sender: "a@example.com", IP: ip, Mechanism: "a:x.example", Err: fmt.Errorf("%w: a:x.example: SERVFAIL", spf.ErrDNS)},
			Result{Method: "spf", Value: verify.ResultTemperror, Comment: "temporary error in processing during lookup of a@example.com",
				Reason: "DNS lookup failed: a:x.example: SERVFAIL (at a:x.example)", Props: []Property{{"smtp", "mailfrom", "a@example.com"}}}},
		{"helo", spf.Result{Result: verify.ResultPass, Identity: spf.IdentityHELO, Sender: "postmaster@mail.example.com", HELO: "mail.example.com", IP: ip, Mechanism: "a"},
			Result{Method: "spf", Value: verify.ResultPass, Comment: "domain of mail.example.com designates 192.0.2.1 as permitted sender",
				Reason: "mechanism a matched", Props: []Property{{"smtp", "helo", "mail.example.com"}}}},
		{"zero", spf.Result{},
			Result{Method: "spf", Value: verify.ResultNone, Comment: "domain of unknown does not designate permitted sender hosts",
				Props: []Property{{"smtp", "mailfrom", ""}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := FromSPF(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("FromSPF =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestFromDMARC(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   dmarc.Result
		want Result
	}{
		{"pass", dmarc.Result{Result: verify.ResultPass, Reason: "SPF example.com aligned", AuthorDomain: "example.com", Applied: dmarc.TagP, Policy: dmarc.PolicyReject},
			Result{Method: "dmarc", Value: verify.ResultPass, Reason: "SPF example.com aligned", Comment: "p=reject",
				Props: []Property{{"header", "from", "example.com"}, {"policy", "dmarc", "reject"}}}},
		{"fail reject", dmarc.Result{Result: verify.ResultFail, Reason: "no aligned SPF or DKIM pass for example.com", AuthorDomain: "example.com", Applied: dmarc.TagNP, Policy: dmarc.PolicyReject, Disposition: dmarc.PolicyReject},
			Result{Method: "dmarc", Value: verify.ResultFail, Reason: "no aligned SPF or DKIM pass for example.com", Comment: "np=reject dis=reject",
				Props: []Property{{"header", "from", "example.com"}, {"policy", "dmarc", "reject"}}}},
		{"fail sampled", dmarc.Result{Result: verify.ResultFail, AuthorDomain: "example.com", Applied: dmarc.TagP, Policy: dmarc.PolicyQuarantine, Disposition: dmarc.PolicyNone, Reduced: dmarc.ReducedSampling, Sampled: true},
			Result{Method: "dmarc", Value: verify.ResultFail, Comment: "p=quarantine dis=none, lowered by pct",
				Props: []Property{{"header", "from", "example.com"}, {"policy", "dmarc", "quarantine"}}}},
		{"record note", dmarc.Result{Result: verify.ResultPass, Reason: "DKIM aligned", RecordNote: "_dmarc.example.com has no valid p tag and a valid rua: treated as p=none", AuthorDomain: "example.com", Applied: dmarc.TagP, Policy: dmarc.PolicyNone},
			Result{Method: "dmarc", Value: verify.ResultPass, Reason: "DKIM aligned; _dmarc.example.com has no valid p tag and a valid rua: treated as p=none", Comment: "p=none",
				Props: []Property{{"header", "from", "example.com"}, {"policy", "dmarc", "none"}}}},
		{"none", dmarc.Result{Result: verify.ResultNone, Reason: "no DMARC policy record for example.com", AuthorDomain: "example.com"},
			Result{Method: "dmarc", Value: verify.ResultNone, Reason: "no DMARC policy record for example.com",
				Props: []Property{{"header", "from", "example.com"}}}},
		{"permerror no from", dmarc.Result{Result: verify.ResultPermerror, Reason: "dmarc: no From header field", Err: dmarc.ErrNoFrom},
			Result{Method: "dmarc", Value: verify.ResultPermerror, Reason: "dmarc: no From header field"}},
		{"zero", dmarc.Result{}, Result{Method: "dmarc", Value: verify.ResultNone}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := FromDMARC(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("FromDMARC =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// TestHeaderB follows RFC 6008 §4.
func TestHeaderB(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		b    string
		all  []string
		want string
	}{
		{"alone", "abcdefghijklmnop", nil, "abcdefgh"},
		{"alone, listed", "abcdefghijklmnop", []string{"abcdefghijklmnop"}, "abcdefgh"},
		{"short", "abc", nil, "abc"},
		{"exactly 8", "abcdefgh", []string{"abcdefgh", "zzzzzzzz"}, "abcdefgh"},
		{"differ after 8", "abcdefgh1234", []string{"abcdefgh1234", "abcdefgh5678"}, "abcdefgh1"},
		{"differ late", "abcdefghijkl1", []string{"abcdefghijkl2", "abcdefghijkl1"}, "abcdefghijkl1"},
		{"differ early", "abcdefghijkl", []string{"zbcdefghijkl"}, "abcdefgh"},
		{"other is a prefix", "abcdefghijkl", []string{"abcdefghij"}, "abcdefghijk"},
		{"b is a prefix of other", "abcdefghij", []string{"abcdefghijkl"}, "abcdefghij"},
		{"folded", "abcd efgh\r\n\tijkl", []string{"abcdefgh ijxx"}, "abcdefghijk"},
		{"empty", "", []string{"abcdefgh"}, ""},
	}
	for _, tc := range tests {
		if got := HeaderB(tc.b, tc.all); got != tc.want {
			t.Errorf("%s: HeaderB(%q, %q) = %q, want %q", tc.name, tc.b, tc.all, got, tc.want)
		}
	}
}
