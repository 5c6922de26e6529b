package authres

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/spf"
)

func TestReceivedSPF(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       spf.Result
		receiver string
		want     string
	}{
		{"pass (RFC 7208 §9.1 example)", spf.Result{
			Result: verify.ResultPass, Identity: spf.IdentityMailFrom, Sender: "myname@example.com",
			IP: netip.MustParseAddr("192.0.2.1"), HELO: "foo.example.com", Mechanism: "ip4:192.0.2.0/24",
		}, "mybox.example.org",
			"pass (mybox.example.org: domain of myname@example.com designates\r\n" +
				"\t192.0.2.1 as permitted sender) client-ip=192.0.2.1;\r\n" +
				"\tenvelope-from=\"myname@example.com\"; helo=foo.example.com;\r\n" +
				"\treceiver=mybox.example.org; identity=mailfrom;\r\n" +
				"\tmechanism=\"ip4:192.0.2.0/24\""},
		{"permerror, IPv6, HELO", spf.Result{
			Result: verify.ResultPermerror, Identity: spf.IdentityHELO, Sender: "postmaster@h.example",
			IP: netip.MustParseAddr("2001:db8::1"), HELO: "h.example",
			Err: fmt.Errorf("%w: unknown mechanism foo", spf.ErrSyntax),
		}, "mx.example.org",
			"permerror (mx.example.org: permanent error in processing during\r\n" +
				"\tlookup of h.example) client-ip=\"2001:db8::1\";\r\n" +
				"\tenvelope-from=\"postmaster@h.example\"; helo=h.example;\r\n" +
				"\tproblem=\"record syntax error: unknown mechanism foo\";\r\n" +
				"\treceiver=mx.example.org; identity=helo"},
		{"no receiver, no IP", spf.Result{Result: verify.ResultNone, Sender: "a@b.example"}, "",
			"none (domain of a@b.example does not designate permitted sender\r\n" +
				"\thosts) envelope-from=\"a@b.example\""},
		{"invalid result", spf.Result{Result: verify.ResultPolicy, Sender: "a@b.example"}, "",
			"none envelope-from=\"a@b.example\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ReceivedSPF(tc.in, tc.receiver)
			if got != tc.want {
				t.Errorf("ReceivedSPF =\n%s\nwant\n%s\n%q", got, tc.want, got)
			}
			if err := checkFieldText(got, 998); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestReceivedSPFHostile(t *testing.T) {
	t.Parallel()
	for _, h := range hostile {
		r := spf.Result{Result: verify.ResultFail, Identity: spf.Identity(h), Sender: h, HELO: h, Mechanism: h, Err: fmt.Errorf("%s", h)}
		got := ReceivedSPF(r, h)
		if err := checkFieldText(got, 998); err != nil {
			t.Errorf("with %.40q: %v", h, err)
		}
		if !strings.HasPrefix(got, "fail ") && !strings.HasPrefix(got, "fail\r\n\t") {
			t.Errorf("with %.40q: result lost: %.80q", h, got)
		}
		// The structure holds: six keys, whatever the values.
		if n := countKeys(got); n != 6 {
			t.Errorf("with %.40q: %d key-value pairs, want 6: %q", h, n, got)
		}
	}
}

// countKeys counts the top-level key=value pairs of a Received-SPF value:
// '=' outside comments and quoted-strings.
func countKeys(s string) int {
	n, depth, quoted := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case quoted:
			quoted = c != '"'
		case c == '"':
			quoted = true
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '=' && depth == 0:
			n++
		}
	}
	return n
}
