package engine

import (
	"strings"
	"testing"

	"github.com/authmilter/authmilter/verify/dmarc"
)

// TestExemptions runs each exemption, list action and From check through
// the engine. Every message that is not rejected still gets its
// Authentication-Results with the DMARC failure and the override.
func TestExemptions(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.dns.TXT["strict.example"] = []string{"v=spf1 -all"}
	w.dns.TXT["_dmarc.strict.example"] = []string{"v=DMARC1; p=reject"}
	// DMARC fails for strict.example; the DKIM signature (d=example.com)
	// and the SPF pass (example.com from 192.0.2.10) are valid but not
	// aligned.
	signedOther := w.sign(t, "example.com", "sel", msgText("strict.example", "", "Hi.\r\n"))
	forged := msgText("strict.example", "", "Hi.\r\n")
	list := msgText("strict.example", "List-Id: Discussion <talk.lists.example.org>\r\n", "Hi.\r\n")
	spfPass := env("192.0.2.10", "mail.example.com", "alice@example.com")
	stranger := env("198.51.100.7", "x.example", "bounce@bounces.list.example")
	rcpts := func(e Envelope, r ...string) Envelope { e.Rcpts = r; return e }
	header := func(s string) string {
		return s + "To: bob@mx.test\r\nSubject: test\r\nDate: Tue, 24 Nov 2026 08:00:00 +0000\r\nMessage-ID: <2@x.example>\r\n\r\nHi.\r\n"
	}

	tests := []struct {
		name     string
		pol      func(p *Policy)
		env      Envelope
		msg      string
		action   Action
		override string // the whole Override.String(); "" for none
		reply    string // substring of the reply
	}{
		{"no exemption: rejected", nil, stranger, forged, ActionReject, "", "DMARC policy of strict.example is reject"},
		{"ignore_mail_from covers subdomains", func(p *Policy) { p.IgnoreMailFrom = []string{"list.example"} }, stranger, forged,
			ActionAccept, "local_policy: MAIL FROM domain bounces.list.example in policy.ignore_mail_from", ""},
		{"ignore_mail_from is no suffix match", func(p *Policy) { p.IgnoreMailFrom = []string{"st.example"} }, stranger, forged, ActionReject, "", "550"},
		{"ignore_rcpt local part, every recipient", func(p *Policy) { p.IgnoreRcpt = []string{"postmaster@", "abuse@"} },
			rcpts(stranger, "postmaster@mx.test", "Abuse@mx.test"), forged, ActionAccept, "local_policy: every recipient in policy.ignore_rcpt", ""},
		{"ignore_rcpt address", func(p *Policy) { p.IgnoreRcpt = []string{"dmarc@mx.test"} },
			rcpts(stranger, "<dmarc@MX.test>"), forged, ActionAccept, "local_policy: every recipient in policy.ignore_rcpt", ""},
		{"ignore_rcpt address at another domain", func(p *Policy) { p.IgnoreRcpt = []string{"dmarc@mx.test"} },
			rcpts(stranger, "dmarc@other.test"), forged, ActionReject, "", "550"},
		{"ignore_rcpt address, the recipient's domain in U-labels (RFC 8616)", func(p *Policy) { p.IgnoreRcpt = []string{"dmarc@xn--bcher-kva.example"} },
			rcpts(stranger, "dmarc@bücher.example"), forged, ActionAccept, "local_policy: every recipient in policy.ignore_rcpt", ""},
		{"ignore_mail_from, the sender's domain in U-labels", func(p *Policy) { p.IgnoreMailFrom = []string{"xn--bcher-kva.example"} },
			env("198.51.100.7", "x.example", "x@lists.bücher.example"), forged, ActionAccept, "local_policy: MAIL FROM domain lists.xn--bcher-kva.example in policy.ignore_mail_from", ""},
		{"ignore_rcpt domain", func(p *Policy) { p.IgnoreRcpt = []string{"mx.test"} },
			rcpts(stranger, "bob@mail.mx.test"), forged, ActionAccept, "local_policy: every recipient in policy.ignore_rcpt", ""},
		{"ignore_rcpt for some recipients: held, not rejected", func(p *Policy) { p.IgnoreRcpt = []string{"postmaster@"} },
			rcpts(stranger, "bob@mx.test", "postmaster@mx.test"), forged, ActionQuarantine,
			"local_policy: recipient postmaster@mx.test in policy.ignore_rcpt, 1 of 2 recipients: quarantined, not rejected", ""},
		{"ignore_rcpt for some recipients, quarantine by header", func(p *Policy) { p.IgnoreRcpt = []string{"postmaster@"}; p.Quarantine = QuarantineHeader },
			rcpts(stranger, "bob@mx.test", "postmaster@mx.test"), forged, ActionAccept,
			"local_policy: recipient postmaster@mx.test in policy.ignore_rcpt, 1 of 2 recipients: quarantined, not rejected", ""},
		{"allow dkim:", func(p *Policy) { p.AllowDKIM = []string{"example.com"} }, stranger, signedOther,
			ActionAccept, "local_policy: DKIM pass for example.com in policy.allow_domains", ""},
		{"allow dkim: another domain", func(p *Policy) { p.AllowDKIM = []string{"other.example"} }, stranger, signedOther, ActionReject, "", "550"},
		{"allow dkim: needs a pass", func(p *Policy) { p.AllowDKIM = []string{"example.com"} }, stranger,
			strings.Replace(signedOther, "Hi.\r\n", "Changed.\r\n", 1), ActionReject, "", "550"},
		{"allow spf:", func(p *Policy) { p.AllowSPF = []string{"example.com"} }, spfPass, forged,
			ActionAccept, "local_policy: SPF pass for example.com in policy.allow_domains", ""},
		{"allow spf: needs a pass", func(p *Policy) { p.AllowSPF = []string{"example.com"} },
			env("198.51.100.7", "x.example", "alice@example.com"), forged, ActionReject, "", "550"},
		{"list action policy (default)", nil, stranger, list, ActionReject, "", "550"},
		{"list action quarantine", func(p *Policy) { p.ListAction = ListQuarantine }, stranger, list,
			ActionQuarantine, "mailing_list: List-Id field, dmarc.list_action: quarantine", ""},
		{"list action accept", func(p *Policy) { p.ListAction = ListAccept }, stranger, list,
			ActionAccept, "mailing_list: List-Id field, dmarc.list_action: accept", ""},
		{"list action needs List-Id", func(p *Policy) { p.ListAction = ListAccept }, stranger, forged, ActionReject, "", "550"},
		{"from checks off", nil, stranger, header("From: a@x.example\r\nFrom: b@y.example\r\n"), ActionAccept, "", ""},
		{"from checks: none", func(p *Policy) { p.FromChecks = FromChecksReject }, stranger, header(""),
			ActionReject, "local_policy: no From header field, policy.from_checks: reject", "550 5.7.1 Message rejected: no From header field"},
		{"from checks: two fields", func(p *Policy) { p.FromChecks = FromChecksReject }, stranger, header("From: a@x.example\r\nFrom: b@y.example\r\n"),
			ActionReject, "local_policy: 2 From header fields, policy.from_checks: reject", "550 5.7.1 Message rejected: 2 From header fields"},
		{"from checks: two addresses, one domain", func(p *Policy) { p.FromChecks = FromChecksReject }, stranger, header("From: a@x.example, b@x.example\r\n"),
			ActionReject, "local_policy: a From header field with 2 addresses, policy.from_checks: reject", "550 5.7.1 Message rejected: a From header field with 2 addresses"},
		{"from checks: no domain", func(p *Policy) { p.FromChecks = FromChecksReject }, stranger, header("From: undisclosed-recipients:;\r\n"),
			ActionReject, "local_policy: a From header field without a parsable domain, policy.from_checks: reject", "without a parsable domain"},
		{"from checks pass a good From", func(p *Policy) { p.FromChecks = FromChecksReject; p.IgnoreMailFrom = []string{"list.example"} }, stranger, forged,
			ActionAccept, "local_policy: MAIL FROM domain bounces.list.example in policy.ignore_mail_from", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := w.engine()
			if tc.pol != nil {
				tc.pol(&e.Policy)
			}
			v, _, _ := run(t, e, tc.env, tc.msg)
			if v.Action != tc.action || v.Override.String() != tc.override || !strings.Contains(v.Reply, tc.reply) {
				t.Fatalf("action %s override %q reply %q; want %s %q %q\nA-R: %s", v.Action, v.Override, v.Reply, tc.action, tc.override, tc.reply, v.AuthResults)
			}
			if v.Action == ActionReject {
				return
			}
			ar := unfoldAR(v.AuthResults)
			if !strings.Contains(ar, "mx.test;") || !strings.Contains(ar, "dmarc=") {
				t.Errorf("no Authentication-Results: %q", ar)
			}
			if tc.override != "" && !strings.Contains(ar, "override "+tc.override+")") {
				t.Errorf("A-R lacks the override:\n%s", ar)
			}
		})
	}
}

func TestFromProblem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		from []string
		want string
	}{
		{[]string{"Alice <alice@example.com>"}, ""},
		{[]string{"=?utf-8?q?Al=C3=AFce?= <alice@example.com>"}, ""},
		{[]string{"=?x-unknown?q?Al=C3=AFce?= <alice@example.com>"}, ""},
		{[]string{"\"Smith, Alice\" <alice@example.com>"}, ""},
		{nil, "no From header field"},
		{[]string{"a@example.com", "b@example.com"}, "2 From header fields"},
		{[]string{"a@example.com,\r\n b@example.org"}, "a From header field with 2 addresses"},
		{[]string{"alice"}, "a From header field without a parsable domain"},
		{[]string{""}, "a From header field without a parsable domain"},
		{[]string{"alice@[192.0.2.1]"}, "a From header field without a parsable domain"},
	} {
		if got := fromProblem(tc.from); got != tc.want {
			t.Errorf("fromProblem(%q) = %q, want %q", tc.from, got, tc.want)
		}
	}
}

// FuzzFromProblem: From values from the wire never panic the check, and
// a value it passes has exactly one author domain.
func FuzzFromProblem(f *testing.F) {
	for _, s := range []string{"a@example.com", "a@example.com, b@example.org", "undisclosed-recipients:;", "\"x\" <a@[192.0.2.1]>", "=?utf-8?q?x?= <a@b.example>", ""} {
		f.Add(s, "")
		f.Add(s, "b@example.net")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		from := []string{a}
		if b != "" {
			from = append(from, b)
		}
		if fromProblem(from) == "" {
			if d, err := dmarc.AuthorDomains(from); err != nil || len(d) != 1 {
				t.Errorf("fromProblem(%q) passed, but author domains %v %v", from, d, err)
			}
		}
	})
}
