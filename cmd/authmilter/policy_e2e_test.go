package main

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	msgauthdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/authmilter/authmilter/internal/testsupport/postfixtest"
)

// TestPostfixExemptions: through one real Postfix, each exemption of
// issue #22 (policy.ignore_rcpt, whole and partial; policy.ignore_mail_from;
// policy.allow_domains "dkim:DOMAIN" and "spf:DOMAIN"), the mailing-list
// action and each kind of From check ends as the policy says: delivered,
// held or refused. For each, the override reason in the delivered or held
// message's Authentication-Results is the daemon's log line's, word for
// word; a refusal's reply names the problem the log line names. Controls
// next to each exemption (the same message just outside its rule) are
// refused, so it is the rule that lets the message through.
func TestPostfixExemptions(t *testing.T) {
	// A second signing domain: a valid signature that does not align with
	// the From domain example.com.
	_, signerKey, _ := ed25519.GenerateKey(rand.Reader)
	x := newE2E(t, map[string][]string{
		"sel._domainkey.signer.test": {"v=DKIM1; k=ed25519; p=" +
			base64.StdEncoding.EncodeToString(signerKey.Public().(ed25519.PublicKey))},
		"spf-ok.test": {"v=spf1 ip4:198.51.100.0/24 -all"},
	})
	data, err := os.ReadFile(x.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("log: {level: debug}"), []byte("log: {level: debug, format: json}"), 1)
	data = bytes.Replace(data, []byte("policy:\n  internal_networks: []\n"),
		[]byte("policy:\n  internal_networks: []\n  ignore_rcpt: [postmaster@]\n  ignore_mail_from: [ignored.test]\n"+
			"  allow_domains: [\"dkim:signer.test\", \"spf:spf-ok.test\"]\n  from_checks: reject\ndmarc:\n  list_action: quarantine\n"), 1)
	if err := os.WriteFile(x.cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	x.start(t, "")
	// By default Postfix completes the header of clients matching
	// local_header_rewrite_clients before the milter sees it (a missing
	// From is added, "alice" becomes alice@myorigin), and this harness's
	// connections (from 127.0.0.1, with XCLIENT) match it. A remote
	// client's header reaches the milter as sent: emptied, the setting
	// makes these connections like one.
	pf := postfixtest.Start(t, postfixtest.Options{Milter: "inet:" + x.addr, MilterDefaultAction: "tempfail",
		Extra: map[string]string{"local_header_rewrite_clients": ""}})
	// Unsigned mail From example.com (p=reject) from a client outside its
	// SPF record: DMARC fails, and without an exemption it is refused.
	stranger := postfixtest.Envelope{HeloName: "list.forwarder.test", ClientIP: "198.51.100.7",
		MailFrom: "bounces@forwarder.test", Rcpts: []string{"bob@example.test"}}
	with := func(f func(*postfixtest.Envelope)) postfixtest.Envelope {
		env := stranger
		env.Rcpts = append([]string(nil), stranger.Rcpts...)
		f(&env)
		return env
	}
	signAs := func(key ed25519.PrivateKey, d, msg string) []byte {
		var out bytes.Buffer
		if err := msgauthdkim.Sign(&out, strings.NewReader(msg), &msgauthdkim.SignOptions{
			Domain: d, Selector: "sel", Signer: crypto.Signer(key),
		}); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	brokenSignature := bytes.Replace(signAs(signerKey, "signer.test", mail("example.com", "dkim-broken", "")),
		[]byte("Hello Bob."), []byte("Hello Eve."), 1)
	fromless := strings.Replace(mail("example.com", "no-from", ""), "From: Alice <alice@example.com>\r\n", "", 1)

	const rejectDMARC = "DMARC policy of example.com is reject"
	delivered, held := 0, map[string]bool{}
	for _, tc := range []struct {
		name    string
		env     postfixtest.Envelope
		msg     []byte
		subject string
		// outcome: "delivered", "held" or "rejected".
		outcome string
		// override is the reason the log line and (delivered or held)
		// the A-R give, "" for none; reply is what a refusal says.
		override, reply string
	}{
		{"ignore_rcpt: every recipient", with(func(e *postfixtest.Envelope) { e.Rcpts = []string{"postmaster@example.test"} }),
			[]byte(mail("example.com", "for-postmaster", "")), "for-postmaster",
			"delivered", "local_policy: every recipient in policy.ignore_rcpt", ""},
		{"ignore_rcpt: some recipients", with(func(e *postfixtest.Envelope) { e.Rcpts = []string{"postmaster@example.test", "bob@example.test"} }),
			[]byte(mail("example.com", "postmaster-and-bob", "")), "postmaster-and-bob",
			"held", "local_policy: recipient postmaster@example.test in policy.ignore_rcpt, 1 of 2 recipients: quarantined, not rejected", ""},
		{"list_action: quarantine", stranger,
			[]byte(mail("example.com", "list", "List-Id: <talk.forwarder.test>\r\n")), "list",
			"held", "mailing_list: List-Id field, dmarc.list_action: quarantine", ""},
		{"ignore_mail_from: subdomain of the entry", with(func(e *postfixtest.Envelope) { e.MailFrom = "bounces@news.ignored.test" }),
			[]byte(mail("example.com", "ignored-sender", "")), "ignored-sender",
			"delivered", "local_policy: MAIL FROM domain news.ignored.test in policy.ignore_mail_from", ""},
		{"ignore_mail_from control: notignored.test is not under ignored.test", with(func(e *postfixtest.Envelope) { e.MailFrom = "bounces@notignored.test" }),
			[]byte(mail("example.com", "not-ignored-sender", "")), "not-ignored-sender",
			"rejected", "", rejectDMARC},
		{"allow_domains dkim:signer.test", stranger,
			signAs(signerKey, "signer.test", mail("example.com", "dkim-allowed", "")), "dkim-allowed",
			"delivered", "local_policy: DKIM pass for signer.test in policy.allow_domains", ""},
		{"dkim: control: a broken signature by signer.test", stranger,
			brokenSignature, "dkim-broken",
			"rejected", "", rejectDMARC},
		{"allow_domains spf:spf-ok.test", with(func(e *postfixtest.Envelope) { e.MailFrom = "bounces@spf-ok.test" }),
			[]byte(mail("example.com", "spf-allowed", "")), "spf-allowed",
			"delivered", "local_policy: SPF pass for spf-ok.test in policy.allow_domains", ""},
		{"spf: control: spf-ok.test from a client its record fails", with(func(e *postfixtest.Envelope) {
			e.MailFrom, e.ClientIP = "bounces@spf-ok.test", "203.0.113.9"
		}), []byte(mail("example.com", "spf-failed", "")), "spf-failed",
			"rejected", "", rejectDMARC},
		{"from_checks: no From", stranger, []byte(fromless), "no-from",
			"rejected", "local_policy: no From header field, policy.from_checks: reject", "no From header field"},
		{"from_checks: two From fields", stranger,
			[]byte("From: a@example.com\r\n" + mail("example.com", "two-from", "")), "two-from",
			"rejected", "local_policy: 2 From header fields, policy.from_checks: reject", "2 From header fields"},
		{"from_checks: two addresses in one From", stranger,
			[]byte(strings.Replace(mail("example.com", "two-addresses", ""), "From: Alice <alice@example.com>", "From: Alice <alice@example.com>, carol@example.org", 1)), "two-addresses",
			"rejected", "local_policy: a From header field with 2 addresses, policy.from_checks: reject", "a From header field with 2 addresses"},
		{"from_checks: no parsable domain", stranger,
			[]byte(strings.Replace(mail("example.com", "no-domain", ""), "From: Alice <alice@example.com>", "From: Alice <alice>", 1)), "no-domain",
			"rejected", "local_policy: a From header field without a parsable domain, policy.from_checks: reject", "a From header field without a parsable domain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mark := len(x.log.String())
			code, reply, err := pf.Send(t, tc.env, tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			rec := messageLogLine(t, x.log.String()[mark:])
			logged, _ := rec["override"].(string)
			if logged != tc.override {
				t.Errorf("log line override %q, want %q", logged, tc.override)
			}
			var stored []byte
			switch tc.outcome {
			case "rejected":
				if code != 550 || !strings.Contains(reply, "5.7.1") || !strings.Contains(reply, tc.reply) {
					t.Fatalf("got %d %q, want 550 5.7.1 saying %q", code, reply, tc.reply)
				}
				if rec["action"] != "reject" || !strings.Contains(rec["reply"].(string), tc.reply) {
					t.Errorf("log line action %v reply %v", rec["action"], rec["reply"])
				}
				return
			case "delivered":
				if code != 250 {
					t.Fatalf("got %d %q, want 250", code, reply)
				}
				delivered++
				stored = findDelivered(t, pf.WaitDelivered(t, delivered, 20*time.Second), tc.subject).Raw
			case "held":
				if code != 250 {
					t.Fatalf("got %d %q, want 250", code, reply)
				}
				for _, id := range pf.HoldQueue(t) {
					if !held[id] {
						held[id] = true
						stored = pf.HeldMessage(t, id)
					}
				}
				if stored == nil {
					t.Fatalf("nothing new in the hold queue\n%s", pf.LogTail(20))
				}
			}
			if want := map[string]string{"delivered": "accept", "held": "quarantine"}[tc.outcome]; rec["action"] != want {
				t.Errorf("log line action %v, want %s", rec["action"], want)
			}
			hdr, _ := postfixtest.ParseMessage(stored)
			d := postfixtest.Delivered{Header: hdr}
			if d.Get("Subject") != tc.subject {
				t.Fatalf("stored message has Subject %q, want %q", d.Get("Subject"), tc.subject)
			}
			ar := strings.Join(strings.Fields(d.Get("Authentication-Results")), " ")
			if !strings.Contains(ar, "dmarc=fail") {
				t.Errorf("A-R %q lacks dmarc=fail", ar)
			}
			if got := arOverride(ar); got != logged || got != tc.override {
				t.Errorf("A-R override %q, log line %q, want %q (A-R %s)", got, logged, tc.override, ar)
			}
		})
	}

	t.Run("iprev of the client, started at connect", func(t *testing.T) {
		good := postfixtest.Envelope{HeloName: "mail.example.com", ClientIP: "192.0.2.10", ClientName: "mail.example.com",
			MailFrom: "alice@example.com", Rcpts: []string{"bob@example.test"}}
		code, reply, err := pf.Send(t, good, x.sign(t, mail("example.com", "iprev", "")))
		if err != nil || code != 250 {
			t.Fatalf("send: %d %s %v", code, reply, err)
		}
		delivered++
		d := findDelivered(t, pf.WaitDelivered(t, delivered, 20*time.Second), "iprev")
		ar := strings.Join(strings.Fields(d.Get("Authentication-Results")), " ")
		if !strings.Contains(ar, "iprev=pass policy.iprev=192.0.2.10 (mail.example.com)") {
			t.Errorf("A-R %q lacks the iprev pass", ar)
		}
	})
	if t.Failed() {
		t.Logf("daemon log:\n%s", x.log.String())
	}
}

// messageLogLine returns the one per-message JSON log line in out (the
// daemon's log written during one transaction).
func messageLogLine(t *testing.T, out string) map[string]any {
	t.Helper()
	var found map[string]any
	for _, line := range strings.Split(out, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "message" {
			continue
		}
		if found != nil {
			t.Fatalf("two message log lines for one transaction:\n%s", out)
		}
		found = rec
	}
	if found == nil {
		t.Fatalf("no message log line for the transaction:\n%s", out)
	}
	return found
}

var arOverrideRE = regexp.MustCompile(`override ([^()]*)\)`)

// arOverride is the override reason in an unfolded Authentication-Results
// value (the policy.dmarc comment "(... override REASON)"), or "".
func arOverride(ar string) string {
	m := arOverrideRE.FindAllStringSubmatch(ar, -1)
	if len(m) != 1 {
		return ""
	}
	return m[0][1]
}
