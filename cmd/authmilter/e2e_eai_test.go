package main

import (
	"bytes"
	"crypto"
	"strings"
	"testing"
	"time"

	msgauthdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/authmilter/authmilter/internal/testsupport/postfixtest"
)

// eaiMail is an internationalized message (RFC 6532: UTF-8 in the header)
// From info@<from>.
func eaiMail(from, subject string) string {
	return "From: Info <info@" + from + ">\r\nTo: bob@example.test\r\nSubject: " + subject +
		"\r\nDate: Tue, 24 Nov 2026 08:00:00 +0000\r\nMessage-ID: <" + subject + "@xn--bcher-kva.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße.\r\n"
}

// TestPostfixSMTPUTF8 is issue #25 through a real Postfix with
// smtputf8_enable = yes: an SMTPUTF8 client whose MAIL FROM, HELO and From
// are in U-labels of a p=reject domain is judged like one using A-labels.
func TestPostfixSMTPUTF8(t *testing.T) {
	x := newE2E(t)
	x.start(t, "")
	pf := postfixtest.Start(t, postfixtest.Options{Milter: "inet:" + x.addr, MilterDefaultAction: "tempfail",
		Extra: map[string]string{"smtputf8_enable": "yes"}})
	delivered := 0
	deliver := func(t *testing.T, env postfixtest.Envelope, msg []byte, subject string) string {
		t.Helper()
		code, reply, err := pf.Send(t, env, msg)
		if err != nil || code != 250 {
			t.Fatalf("send: %d %s %v\n%s", code, reply, err, x.log.String())
		}
		delivered++
		d := findDelivered(t, pf.WaitDelivered(t, delivered, 20*time.Second), subject)
		ars := d.Values("Authentication-Results")
		if len(ars) != 1 {
			t.Fatalf("Authentication-Results fields %q, want exactly ours", ars)
		}
		if strings.Contains(ars[0], "bücher") {
			t.Errorf("A-R %q: want domains in A-labels", ars[0])
		}
		return ars[0]
	}
	wantAll := func(t *testing.T, ar string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(ar, w) {
				t.Errorf("A-R %q lacks %q", ar, w)
			}
		}
	}
	utf8Env := func(mailFrom, helo, ip string) postfixtest.Envelope {
		return postfixtest.Envelope{HeloName: helo, ClientIP: ip, MailFrom: mailFrom, MailParams: "SMTPUTF8",
			Rcpts: []string{"bob@example.test"}}
	}

	t.Run("U-label MAIL FROM and From pass SPF and DMARC", func(t *testing.T) {
		ar := deliver(t, utf8Env("info@bücher.example", "mx.bücher.example", "192.0.2.5"), []byte(eaiMail("bücher.example", "u-labels")), "u-labels")
		wantAll(t, ar, "spf=pass", "smtp.mailfrom=info@xn--bcher-kva.example", "dmarc=pass", "header.from=xn--bcher-kva.example")
	})
	t.Run("A-label MAIL FROM, U-label From", func(t *testing.T) {
		ar := deliver(t, utf8Env("info@xn--bcher-kva.example", "mx.bücher.example", "192.0.2.5"), []byte(eaiMail("bücher.example", "a-mailfrom")), "a-mailfrom")
		wantAll(t, ar, "spf=pass", "smtp.mailfrom=info@xn--bcher-kva.example", "dmarc=pass")
	})
	t.Run("null sender with a U-label HELO", func(t *testing.T) {
		ar := deliver(t, utf8Env("", "mx.bücher.example", "192.0.2.5"), []byte(eaiMail("bücher.example", "null-sender")), "null-sender")
		wantAll(t, ar, "spf=pass", "smtp.mailfrom=postmaster@mx.xn--bcher-kva.example", "dmarc=pass")
	})
	t.Run("DKIM d= in U-labels from a forwarder", func(t *testing.T) {
		var signed bytes.Buffer
		if err := msgauthdkim.Sign(&signed, strings.NewReader(eaiMail("bücher.example", "dkim-u-label")), &msgauthdkim.SignOptions{
			Domain: "bücher.example", Selector: "sel", Signer: crypto.Signer(x.dkimKey),
			HeaderCanonicalization: msgauthdkim.CanonicalizationRelaxed,
			BodyCanonicalization:   msgauthdkim.CanonicalizationSimple,
		}); err != nil {
			t.Fatal(err)
		}
		ar := deliver(t, utf8Env("bounces@forwarder.test", "list.forwarder.test", "198.51.100.7"), signed.Bytes(), "dkim-u-label")
		wantAll(t, ar, "dkim=pass", "header.d=xn--bcher-kva.example", "dmarc=pass")
	})
	t.Run("unauthenticated U-label From is rejected", func(t *testing.T) {
		code, reply, err := pf.Send(t, utf8Env("bounces@forwarder.test", "list.forwarder.test", "198.51.100.7"), []byte(eaiMail("bücher.example", "forged")))
		if err != nil {
			t.Fatal(err)
		}
		if code != 550 || !strings.Contains(reply, "DMARC policy of xn--bcher-kva.example is reject") {
			t.Fatalf("got %d %q, want 550 naming xn--bcher-kva.example's reject policy", code, reply)
		}
	})
	if t.Failed() {
		t.Logf("daemon log:\n%s", x.log.String())
	}
}
