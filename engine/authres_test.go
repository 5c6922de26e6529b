package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"

	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/authres"
	"github.com/authmilter/authmilter/verify/dmarc"
	"github.com/authmilter/authmilter/verify/spf"
)

func TestSPFAuthRes(t *testing.T) {
	t.Parallel()
	ip := netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name string
		in   spf.Result
		want authres.Result
	}{
		{"pass", spf.Result{Status: verify.StatusPass, Identity: spf.IdentityMailFrom, Sender: "a@example.com", Domain: "example.com", IP: ip, Mechanism: "mx"},
			authres.Result{Method: "spf", Value: verify.StatusPass, Comment: "domain of a@example.com designates 192.0.2.1 as permitted sender",
				Reason: "mechanism mx matched", Props: []authres.Property{{Type: "smtp", Name: "mailfrom", Value: "a@example.com"}}}},
		{"fail default", spf.Result{Status: verify.StatusFail, Identity: spf.IdentityMailFrom, Sender: "a@example.com", IP: ip, Mechanism: "default", Explanation: "go away\r\nX: y"},
			authres.Result{Method: "spf", Value: verify.StatusFail, Comment: "domain of a@example.com does not designate 192.0.2.1 as permitted sender",
				Reason: "no mechanism matched", Props: []authres.Property{{Type: "smtp", Name: "mailfrom", Value: "a@example.com"}}}},
		{"softfail", spf.Result{Status: verify.StatusSoftfail, Identity: spf.IdentityMailFrom, Sender: "a@example.com", IP: ip, Mechanism: "~all"},
			authres.Result{Method: "spf", Value: verify.StatusSoftfail, Comment: "domain of transitioning a@example.com does not designate 192.0.2.1 as permitted sender",
				Reason: "mechanism ~all matched", Props: []authres.Property{{Type: "smtp", Name: "mailfrom", Value: "a@example.com"}}}},
		{"neutral", spf.Result{Status: verify.StatusNeutral, Identity: spf.IdentityMailFrom, Sender: "a@example.com", IP: ip, Mechanism: "?all"},
			authres.Result{Method: "spf", Value: verify.StatusNeutral, Comment: "192.0.2.1 is neither permitted nor denied by domain of a@example.com",
				Reason: "mechanism ?all matched", Props: []authres.Property{{Type: "smtp", Name: "mailfrom", Value: "a@example.com"}}}},
		{"none", spf.Result{Status: verify.StatusNone, Identity: spf.IdentityMailFrom, Sender: "a@example.com", IP: ip, Err: spf.ErrNoRecord},
			authres.Result{Method: "spf", Value: verify.StatusNone, Comment: "domain of a@example.com does not designate permitted sender hosts",
				Reason: "no SPF record", Props: []authres.Property{{Type: "smtp", Name: "mailfrom", Value: "a@example.com"}}}},
		{"temperror", spf.Result{Status: verify.StatusTemperror, Identity: spf.IdentityMailFrom, Sender: "a@example.com", IP: ip, Mechanism: "a:x.example", Err: fmt.Errorf("%w: a:x.example: SERVFAIL", spf.ErrDNS)},
			authres.Result{Method: "spf", Value: verify.StatusTemperror, Comment: "temporary error in processing during lookup of a@example.com",
				Reason: "DNS lookup failed: a:x.example: SERVFAIL (at a:x.example)", Props: []authres.Property{{Type: "smtp", Name: "mailfrom", Value: "a@example.com"}}}},
		{"helo", spf.Result{Status: verify.StatusPass, Identity: spf.IdentityHELO, Sender: "postmaster@mail.example.com", HELO: "mail.example.com", IP: ip, Mechanism: "a"},
			authres.Result{Method: "spf", Value: verify.StatusPass, Comment: "domain of mail.example.com designates 192.0.2.1 as permitted sender",
				Reason: "mechanism a matched", Props: []authres.Property{{Type: "smtp", Name: "helo", Value: "mail.example.com"}}}},
		{"zero", spf.Result{},
			authres.Result{Method: "spf", Value: verify.StatusNone, Comment: "domain of unknown does not designate permitted sender hosts",
				Props: []authres.Property{{Type: "smtp", Name: "mailfrom", Value: ""}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := spfAuthRes(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("spfAuthRes =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestDMARCAuthRes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   dmarc.Result
		want authres.Result
	}{
		{"pass", dmarc.Result{Status: verify.StatusPass, Reason: "SPF example.com aligned", AuthorDomain: "example.com", Applied: dmarc.TagP, Policy: dmarc.PolicyReject},
			authres.Result{Method: "dmarc", Value: verify.StatusPass, Reason: "SPF example.com aligned", Comment: "p=reject",
				Props: []authres.Property{{Type: "header", Name: "from", Value: "example.com"}, {Type: "policy", Name: "dmarc", Value: "reject"}}}},
		{"fail reject", dmarc.Result{Status: verify.StatusFail, Reason: "no aligned SPF or DKIM pass for example.com", AuthorDomain: "example.com", Applied: dmarc.TagNP, Policy: dmarc.PolicyReject, Disposition: dmarc.PolicyReject},
			authres.Result{Method: "dmarc", Value: verify.StatusFail, Reason: "no aligned SPF or DKIM pass for example.com", Comment: "np=reject dis=reject",
				Props: []authres.Property{{Type: "header", Name: "from", Value: "example.com"}, {Type: "policy", Name: "dmarc", Value: "reject"}}}},
		{"fail sampled", dmarc.Result{Status: verify.StatusFail, AuthorDomain: "example.com", Applied: dmarc.TagP, Policy: dmarc.PolicyQuarantine, Disposition: dmarc.PolicyNone, Reduced: dmarc.ReducedSampling, Sampled: true},
			authres.Result{Method: "dmarc", Value: verify.StatusFail, Comment: "p=quarantine dis=none, lowered by pct",
				Props: []authres.Property{{Type: "header", Name: "from", Value: "example.com"}, {Type: "policy", Name: "dmarc", Value: "quarantine"}}}},
		{"record note", dmarc.Result{Status: verify.StatusPass, Reason: "DKIM aligned", RecordNote: "_dmarc.example.com has no valid p tag and a valid rua: treated as p=none", AuthorDomain: "example.com", Applied: dmarc.TagP, Policy: dmarc.PolicyNone},
			authres.Result{Method: "dmarc", Value: verify.StatusPass, Reason: "DKIM aligned; _dmarc.example.com has no valid p tag and a valid rua: treated as p=none", Comment: "p=none",
				Props: []authres.Property{{Type: "header", Name: "from", Value: "example.com"}, {Type: "policy", Name: "dmarc", Value: "none"}}}},
		{"none", dmarc.Result{Status: verify.StatusNone, Reason: "no DMARC policy record for example.com", AuthorDomain: "example.com"},
			authres.Result{Method: "dmarc", Value: verify.StatusNone, Reason: "no DMARC policy record for example.com",
				Props: []authres.Property{{Type: "header", Name: "from", Value: "example.com"}}}},
		{"permerror no from", dmarc.Result{Status: verify.StatusPermerror, Reason: "dmarc: no From header field", Err: dmarc.ErrNoFrom},
			authres.Result{Method: "dmarc", Value: verify.StatusPermerror, Reason: "dmarc: no From header field"}},
		{"zero", dmarc.Result{}, authres.Result{Method: "dmarc", Value: verify.StatusNone}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := dmarcAuthRes(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("dmarcAuthRes =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestReceivedSPF(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       spf.Result
		receiver string
		want     string
	}{
		{"pass (RFC 7208 §9.1 example)", spf.Result{
			Status: verify.StatusPass, Identity: spf.IdentityMailFrom, Sender: "myname@example.com",
			IP: netip.MustParseAddr("192.0.2.1"), HELO: "foo.example.com", Mechanism: "ip4:192.0.2.0/24",
		}, "mybox.example.org",
			"pass (mybox.example.org: domain of myname@example.com designates\r\n" +
				"\t192.0.2.1 as permitted sender) client-ip=192.0.2.1;\r\n" +
				"\tenvelope-from=\"myname@example.com\"; helo=foo.example.com;\r\n" +
				"\treceiver=mybox.example.org; identity=mailfrom;\r\n" +
				"\tmechanism=\"ip4:192.0.2.0/24\""},
		{"permerror, IPv6, HELO", spf.Result{
			Status: verify.StatusPermerror, Identity: spf.IdentityHELO, Sender: "postmaster@h.example",
			IP: netip.MustParseAddr("2001:db8::1"), HELO: "h.example",
			Err: fmt.Errorf("%w: unknown mechanism foo", spf.ErrSyntax),
		}, "mx.example.org",
			"permerror (mx.example.org: permanent error in processing during\r\n" +
				"\tlookup of h.example) client-ip=\"2001:db8::1\";\r\n" +
				"\tenvelope-from=\"postmaster@h.example\"; helo=h.example;\r\n" +
				"\tproblem=\"record syntax error\"; receiver=mx.example.org; identity=helo"},
		{"temperror names no resolver", spf.Result{
			Status: verify.StatusTemperror, Identity: spf.IdentityMailFrom, Sender: "a@b.example",
			Err: fmt.Errorf("%w: TXT b.example: %w", spf.ErrDNS, dnscache.NewError(dnscache.ErrTemporary, "b.example", "10.1.2.3:53", "i/o timeout", true)),
		}, "mx.example.org",
			"temperror (mx.example.org: temporary error in processing during\r\n" +
				"\tlookup of a@b.example) envelope-from=\"a@b.example\";\r\n" +
				"\tproblem=\"temporary DNS failure\"; receiver=mx.example.org;\r\n" +
				"\tidentity=mailfrom"},
		{"no receiver, no IP", spf.Result{Status: verify.StatusNone, Sender: "a@b.example"}, "",
			"none (domain of a@b.example does not designate permitted sender\r\n" +
				"\thosts) envelope-from=\"a@b.example\""},
		{"invalid result", spf.Result{Status: verify.StatusPolicy, Sender: "a@b.example"}, "",
			"none envelope-from=\"a@b.example\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := receivedSPF(tc.in, tc.receiver)
			if got != tc.want {
				t.Errorf("receivedSPF =\n%s\nwant\n%s\n%q", got, tc.want, got)
			}
		})
	}
}

// TestPublicReasonIdentifierTemperror: DMARC temperror because an SPF
// temperror was for an identifier that could align names that cause, not
// a DMARC lookup that "did not finish during policy discovery".
func TestPublicReasonIdentifierTemperror(t *testing.T) {
	t.Parallel()
	r := &dnstest.Resolver{TXT: map[string][]string{"_dmarc.victim.example": {"v=DMARC1; p=reject"}}}
	d := dmarc.Evaluate(context.Background(), r, dmarc.Args{
		From: []string{"ceo@victim.example"},
		SPF:  dmarc.SPF{Status: verify.StatusTemperror, Domain: "bounce.victim.example", Identity: dmarc.IdentityMailFrom},
	}, nil)
	if d.Status != verify.StatusTemperror || !errors.Is(d.Err, dmarc.ErrIdentifierTemperror) || !errors.Is(d.Err, dmarc.ErrDNS) {
		t.Fatalf("%s (%v)", d.Status, d.Err)
	}
	got := publicDMARCReason(d)
	if strings.Contains(got, "did not finish") || strings.Contains(got, "policy discovery") || !strings.Contains(got, "SPF or DKIM") {
		t.Fatalf("public reason %q misstates the cause", got)
	}
}
