package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/internal/testsupport/postfixtest"
)

// TestPostfixExemptions: through a real Postfix, mail for an ignored
// recipient is delivered with its verdict, a mailing list message that
// fails DMARC is held instead of rejected, and a message with two From
// fields is refused with a reply that says so.
func TestPostfixExemptions(t *testing.T) {
	x := newE2E(t)
	data, err := os.ReadFile(x.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("policy:\n  internal_networks: []\n"),
		[]byte("policy:\n  internal_networks: []\n  ignore_rcpt: [postmaster@]\n  from_checks: reject\ndmarc:\n  list_action: quarantine\n"), 1)
	if err := os.WriteFile(x.cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	x.start(t, "")
	pf := postfixtest.Start(t, postfixtest.Options{Milter: "inet:" + x.addr, MilterDefaultAction: "tempfail"})
	stranger := postfixtest.Envelope{HeloName: "list.forwarder.test", ClientIP: "198.51.100.7",
		MailFrom: "bounces@forwarder.test", Rcpts: []string{"bob@example.test"}}

	t.Run("ignored recipient: delivered with the verdict", func(t *testing.T) {
		env := stranger
		env.Rcpts = []string{"postmaster@example.test"}
		code, reply, err := pf.Send(t, env, []byte(mail("example.com", "for-postmaster", "")))
		if err != nil || code != 250 {
			t.Fatalf("send: %d %s %v\n%s", code, reply, err, x.log.String())
		}
		d := findDelivered(t, pf.WaitDelivered(t, 1, 20*time.Second), "for-postmaster")
		ar := strings.Join(strings.Fields(d.Get("Authentication-Results")), " ")
		for _, want := range []string{"dmarc=fail", "override local_policy: every recipient in policy.ignore_rcpt"} {
			if !strings.Contains(ar, want) {
				t.Errorf("A-R %q lacks %q", ar, want)
			}
		}
	})

	t.Run("mailing list: held, not rejected", func(t *testing.T) {
		code, reply, err := pf.Send(t, stranger, []byte(mail("example.com", "list", "List-Id: <talk.forwarder.test>\r\n")))
		if err != nil || code != 250 {
			t.Fatalf("send: %d %s %v", code, reply, err)
		}
		held := pf.HoldQueue(t)
		if len(held) != 1 {
			t.Fatalf("hold queue %v, want one message\n%s", held, pf.LogTail(20))
		}
		m := string(pf.HeldMessage(t, held[0]))
		if !strings.Contains(strings.Join(strings.Fields(m), " "), "override mailing_list: List-Id field, dmarc.list_action: quarantine") {
			t.Errorf("held message lacks the override:\n%s", m)
		}
	})

	t.Run("iprev of the client, started at connect", func(t *testing.T) {
		good := postfixtest.Envelope{HeloName: "mail.example.com", ClientIP: "192.0.2.10", ClientName: "mail.example.com",
			MailFrom: "alice@example.com", Rcpts: []string{"bob@example.test"}}
		code, reply, err := pf.Send(t, good, x.sign(t, mail("example.com", "iprev", "")))
		if err != nil || code != 250 {
			t.Fatalf("send: %d %s %v", code, reply, err)
		}
		d := findDelivered(t, pf.WaitDelivered(t, 2, 20*time.Second), "iprev")
		ar := strings.Join(strings.Fields(d.Get("Authentication-Results")), " ")
		if !strings.Contains(ar, "iprev=pass policy.iprev=192.0.2.10 (mail.example.com)") {
			t.Errorf("A-R %q lacks the iprev pass", ar)
		}
	})

	t.Run("two From fields: 550 saying so", func(t *testing.T) {
		msg := "From: a@example.com\r\n" + mail("example.com", "two-from", "")
		code, reply, err := pf.Send(t, stranger, []byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		if code != 550 || !strings.Contains(reply, "5.7.1") || !strings.Contains(reply, "2 From header fields") {
			t.Fatalf("got %d %q, want 550 5.7.1 naming the two From fields", code, reply)
		}
	})
	if t.Failed() {
		t.Logf("daemon log:\n%s", x.log.String())
	}
}
