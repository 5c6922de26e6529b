package spf_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/spf"
)

// RFC 8616 §4: a MAIL FROM or HELO domain in U-labels is checked, and
// expanded by %{d}, %{o}, %{s} and %{h}, in its A-label form.
func TestVerifyULabels(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ip := netip.MustParseAddr("192.0.2.5")
	for _, tc := range []struct {
		name string
		args spf.Args
		id   spf.Identity
		want string // Result.Domain
	}{
		{"mailfrom-u-label", spf.Args{IP: ip, MailFromLocal: "info", MailFromDomain: "bücher.example", HELO: "mx.bücher.example"}, spf.IdentityMailFrom, "xn--bcher-kva.example"},
		{"mailfrom-mixed-case", spf.Args{IP: ip, MailFromLocal: "info", MailFromDomain: "BÜCHER.Example.", HELO: "mx.bücher.example"}, spf.IdentityMailFrom, "xn--bcher-kva.example"},
		{"mailfrom-a-label", spf.Args{IP: ip, MailFromLocal: "info", MailFromDomain: "xn--bcher-kva.example", HELO: "mx.bücher.example"}, spf.IdentityMailFrom, "xn--bcher-kva.example"},
		{"null-sender-u-label-helo", spf.Args{IP: ip, HELO: "mx.bücher.example"}, spf.IdentityMailFrom, "mx.xn--bcher-kva.example"},
		{"helo-u-label", spf.Args{IP: ip, HELO: "mx.Bücher.example"}, spf.IdentityHELO, "mx.xn--bcher-kva.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			z := zone(map[string][]string{
				"xn--bcher-kva.example":    {"v=spf1 ip4:192.0.2.0/24 -all"},
				"mx.xn--bcher-kva.example": {"v=spf1 exists:%{h}.%{o}.%{d}._check.example -all"},
			})
			z.A["mx.xn--bcher-kva.example.mx.xn--bcher-kva.example.mx.xn--bcher-kva.example._check.example"] = []string{"127.0.0.2"}
			var res spf.Result
			if tc.id == spf.IdentityHELO {
				res = spf.VerifyHELO(ctx, z, tc.args)
			} else {
				res = spf.Verify(ctx, z, tc.args)
			}
			if res.HELO != "mx.xn--bcher-kva.example" {
				t.Errorf("HELO = %q, want the A-labels", res.HELO)
			}
			if res.Status != verify.StatusPass || res.Domain != tc.want || !strings.HasSuffix(res.Sender, "@"+tc.want) {
				t.Errorf("= %s domain %q sender %q (%v), want pass for %s; queries %q", res.Status, res.Domain, res.Sender, res.Err, tc.want, z.Queries())
			}
		})
	}
}

// RFC 8616 §4: with a non-ASCII local part, terms using %{l} or %{s} match
// nothing, even when their URL-escaped form would be a usable name.
func TestVerifyNonASCIILocalPart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	z := zone(map[string][]string{
		"example.com":          {"v=spf1 exists:%{L}.users.example.com include:%{l}.inc.example.com ?exists:%{s}.example.com -all"},
		"inc.example.com":      {"v=spf1 +all"},
		"example.org":          {"v=spf1 exists:%{l}.users.example.org -all"},
		"redirect.example.com": {"v=spf1 redirect=%{l}.example.com"},
	})
	z.A["j%C3%B6rg.users.example.com"] = []string{"127.0.0.2"}
	z.A["jorg.users.example.org"] = []string{"127.0.0.2"}
	ip := netip.MustParseAddr("192.0.2.1")

	res := spf.Verify(ctx, z, args("192.0.2.1", "jörg@example.com"))
	if res.Status != verify.StatusFail || res.Mechanism != "-all" {
		t.Errorf("UTF-8 local part: %s by %q (%v), want fail by -all", res.Status, res.Mechanism, res.Err)
	}
	if q := z.Queries(); slices.ContainsFunc(q, func(s string) bool { return strings.Contains(s, "users") || strings.Contains(s, "inc.") }) {
		t.Errorf("queried a name built from a UTF-8 local part: %q", q)
	}
	// The same terms with an ASCII local part work as before.
	res = spf.Verify(ctx, z, spf.Args{IP: ip, MailFromLocal: "jorg", MailFromDomain: "example.org", HELO: "mail.example.com"})
	if res.Status != verify.StatusPass {
		t.Errorf("ASCII local part: %s (%v), want pass", res.Status, res.Err)
	}
	// redirect= to a name built from the local part finds no record.
	res = spf.Verify(ctx, z, args("192.0.2.1", "jörg@redirect.example.com"))
	if res.Status != verify.StatusPermerror || !errors.Is(res.Err, spf.ErrRedirectNone) {
		t.Errorf("redirect: %s (%v), want permerror ErrRedirectNone", res.Status, res.Err)
	}
}

// An invalid U-label gives none with an error that prints the character.
func TestVerifyInvalidULabel(t *testing.T) {
	t.Parallel()
	z := &dnstest.Resolver{}
	res := spf.Verify(context.Background(), z, args("192.0.2.1", "info@b\u2260cher.example"))
	if res.Status != verify.StatusNone || !errors.Is(res.Err, spf.ErrInvalidDomain) {
		t.Fatalf("= %s (%v), want none, ErrInvalidDomain", res.Status, res.Err)
	}
	if !strings.Contains(res.Err.Error(), "'≠'") {
		t.Errorf("error %q does not name the character '≠'", res.Err)
	}
	if len(z.Queries()) != 0 {
		t.Errorf("queries %q for an invalid name", z.Queries())
	}
}

// A record with a UTF-8 character is a permerror that names the
// character, not its first byte.
func TestRecordUTF8Character(t *testing.T) {
	t.Parallel()
	z := zone(map[string][]string{"example.com": {"v=spf1 a:bücher.example -all"}})
	res := spf.Verify(context.Background(), z, args("192.0.2.1", "a@example.com"))
	if res.Status != verify.StatusPermerror || !strings.Contains(res.Err.Error(), "'ü' (U+00FC)") {
		t.Errorf("= %s (%v), want permerror naming 'ü' (U+00FC)", res.Status, res.Err)
	}
}
