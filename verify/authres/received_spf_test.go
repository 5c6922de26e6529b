package authres

import (
	"strings"
	"testing"

	"github.com/authmilter/authmilter/verify"
)

// TestFormatReceivedSPF: the RFC 7208 §9.1 example, a result with every
// key, one with few, and a result outside §2.6.
func TestFormatReceivedSPF(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   ReceivedSPF
		want string
	}{
		{"pass (RFC 7208 §9.1 example)", ReceivedSPF{
			Status: verify.StatusPass, Comment: "domain of myname@example.com designates 192.0.2.1 as permitted sender",
			Receiver: "mybox.example.org", ClientIP: "192.0.2.1", EnvelopeFrom: "myname@example.com",
			HELO: "foo.example.com", Identity: "mailfrom", Mechanism: "ip4:192.0.2.0/24",
		},
			"pass (mybox.example.org: domain of myname@example.com designates\r\n" +
				"\t192.0.2.1 as permitted sender) client-ip=192.0.2.1;\r\n" +
				"\tenvelope-from=\"myname@example.com\"; helo=foo.example.com;\r\n" +
				"\treceiver=mybox.example.org; identity=mailfrom;\r\n" +
				"\tmechanism=\"ip4:192.0.2.0/24\""},
		{"permerror, IPv6, problem", ReceivedSPF{
			Status: verify.StatusPermerror, Comment: "permanent error in processing during lookup of h.example",
			Receiver: "mx.example.org", ClientIP: "2001:db8::1", EnvelopeFrom: "postmaster@h.example",
			HELO: "h.example", Problem: "record syntax error: unknown mechanism foo", Identity: "helo",
		},
			"permerror (mx.example.org: permanent error in processing during\r\n" +
				"\tlookup of h.example) client-ip=\"2001:db8::1\";\r\n" +
				"\tenvelope-from=\"postmaster@h.example\"; helo=h.example;\r\n" +
				"\tproblem=\"record syntax error: unknown mechanism foo\";\r\n" +
				"\treceiver=mx.example.org; identity=helo"},
		{"no receiver, no IP", ReceivedSPF{Status: verify.StatusNone, Comment: "domain of a@b.example does not designate permitted sender hosts", EnvelopeFrom: "a@b.example"},
			"none (domain of a@b.example does not designate permitted sender\r\n" +
				"\thosts) envelope-from=\"a@b.example\""},
		{"invalid result", ReceivedSPF{Status: verify.StatusPolicy, EnvelopeFrom: "a@b.example"},
			"none envelope-from=\"a@b.example\""},
		{"zero", ReceivedSPF{}, "none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := FormatReceivedSPF(tc.in)
			if got != tc.want {
				t.Errorf("FormatReceivedSPF =\n%s\nwant\n%s\n%q", got, tc.want, got)
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
		r := ReceivedSPF{Status: verify.StatusFail, Comment: "domain of " + h + " does not designate 192.0.2.1 as permitted sender",
			Receiver: h, EnvelopeFrom: h, HELO: h, Problem: h, Identity: h, Mechanism: h}
		got := FormatReceivedSPF(r)
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
