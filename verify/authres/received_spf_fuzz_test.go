package authres

import (
	"strings"
	"testing"

	"github.com/authmilter/authmilter/verify"
)

// FuzzReceivedSPF: whatever the result word, the envelope, the comment and
// the error text, the Received-SPF value is folded only with
// CRLF+WSP, holds no control character, keeps its lines within 998 octets,
// and starts with one of the seven results of RFC 7208 §2.6.
func FuzzReceivedSPF(f *testing.F) {
	f.Add("pass", "myname@example.com", "example.com", "foo.example.com", "ip4:192.0.2.0/24", "", "", "mybox.example.org")
	f.Add("fail", "bob@example.com", "example.com", "host.example.net", "-all", "bad\r\nX-Injected: yes", "", "mx.example.org")
	f.Add("permerror", "postmaster@h.example", "h.example", "h.example", "foo", "", "unknown mechanism \"foo\";\r\n", "mx")
	f.Add("pass\r\nX: y", "a;b=c\"@d", "d(", "(helo)", "a=b; c", "\x00\x1b\u202e", "\xff", "r\\\"")
	f.Fuzz(func(t *testing.T, result, sender, domain, helo, mech, expl, problem, receiver string) {
		// expl, text from the sender's DNS, stands in for the comment;
		// domain for the identity.
		r := ReceivedSPF{
			Status: verify.Status(result), Comment: expl, Receiver: receiver, ClientIP: "192.0.2.1",
			EnvelopeFrom: sender, HELO: helo, Problem: problem, Identity: domain, Mechanism: mech,
		}
		out := FormatReceivedSPF(r)
		if err := checkFieldText(out, 998); err != nil {
			t.Fatal(err)
		}
		// The result word ends at a space or at a fold (a long comment
		// may start on the next line).
		word := out[:strings.IndexAny(out+" ", " \r")]
		switch verify.Status(word) {
		case verify.StatusPass, verify.StatusFail, verify.StatusSoftfail, verify.StatusNeutral,
			verify.StatusNone, verify.StatusTemperror, verify.StatusPermerror:
		default:
			t.Fatalf("result word %q in %q", word, out)
		}
	})
}
