package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/sendmailtest"
	"github.com/authmilter/authmilter/internal/testsupport/syncbuf"
	"github.com/authmilter/authmilter/milter"
)

// TestSendmailEndToEnd drives Debian's Sendmail (unpacked by .ci/run, see
// internal/testsupport/sendmailtest) on loopback with the daemon as its milter, through
// a recording proxy that shows what Sendmail's milter client sends.
// Sendmail has no XCLIENT: the SMTP client is 127.0.0.1 (or ::1), so the
// DNS publishes SPF for those, and internal_networks is empty so that
// loopback mail is judged.
func TestSendmailEndToEnd(t *testing.T) {
	_, dk, _ := ed25519.GenerateKey(rand.Reader)
	x := &e2e{
		dkimKey: dk,
		log:     &syncbuf.Buffer{},
		dns: &dnstest.Resolver{TXT: map[string][]string{
			"example.com":                {"v=spf1 ip4:127.0.0.1 -all"},
			"_dmarc.example.com":         {"v=DMARC1; p=reject"},
			"sel._domainkey.example.com": {"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(dk.Public().(ed25519.PublicKey))},
			"forwarder.test":             {"v=spf1 ip4:127.0.0.1 -all"},
			// Passes SPF, and so DMARC, only from ::1: proof that the
			// daemon read Sendmail's "IPv6:..." client address.
			"v6.example":        {"v=spf1 ip6:::1 -all"},
			"_dmarc.v6.example": {"v=DMARC1; p=reject"},
		}},
	}
	dnsAddr := dnstest.Serve(t, x.dns)
	x.cfgPath = filepath.Join(t.TempDir(), "authmilter.yaml")
	cfg := fmt.Sprintf("listen: inet:127.0.0.1:0\nauthserv_id: mx.e2e.test\nlog: {level: debug}\n"+
		"dns: {servers: [%q], timeout: 1s}\npolicy:\n  internal_networks: []\n", dnsAddr)
	if err := os.WriteFile(x.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ipv6 := true
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Logf("no IPv6 loopback here (%v): the IPv6 client case is left out", err)
		ipv6 = false
	} else {
		ln.Close()
	}

	x.start(t, "")
	rec := sendmailtest.NewRecorder(t, x.addr)
	sm := sendmailtest.Start(t, sendmailtest.Options{Milter: rec.Socket(), IPv6: ipv6})
	defer func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", x.log.String())
		}
	}()
	env := sendmailtest.Envelope{HeloName: "mail.example.com", MailFrom: "alice@example.com", Rcpts: []string{"bob@example.test"}}
	delivered := 0

	t.Run("DMARC reject is Sendmail's 550 with our text", func(t *testing.T) {
		e := env
		e.MailFrom = "bounces@forwarder.test"
		r, err := sm.Send(t, e, []byte(mail("example.com", "rejected", "")))
		if err != nil {
			t.Fatal(err)
		}
		if r.Stage != "EOM" || r.Code != 550 || !strings.HasPrefix(r.Reply, "5.7.1 ") || !strings.Contains(r.Reply, "DMARC policy of example.com is reject") {
			t.Fatalf("got %+v, want 550 5.7.1 naming example.com's reject policy after the message", r)
		}
	})

	t.Run("DKIM-signed, SPF-aligned message accepted with our Authentication-Results", func(t *testing.T) {
		msg := x.sign(t, mail("example.com", "accepted", "Authentication-Results: mx.e2e.test; dmarc=pass header.from=example.com\r\n"))
		r, err := sm.Send(t, env, msg)
		if err != nil || r.Code != 250 {
			t.Fatalf("send: %+v %v", r, err)
		}
		delivered++
		d := findSendmailDelivered(t, sm.WaitDelivered(t, delivered, 10*time.Second), "accepted")
		t.Logf("delivered:\n%s", d.Raw)
		ars := d.Values("Authentication-Results")
		if len(ars) != 1 {
			t.Fatalf("Authentication-Results fields %q, want exactly ours (the forged one removed)", ars)
		}
		for _, want := range []string{"mx.e2e.test", "spf=pass", "smtp.mailfrom=alice@example.com", "smtp.helo=mail.example.com",
			"dkim=pass", "header.d=example.com", "dmarc=pass", "header.from=example.com"} {
			if !strings.Contains(ars[0], want) {
				t.Errorf("A-R %q lacks %q", ars[0], want)
			}
		}
	})

	t.Run("two messages on one connection, the first rejected", func(t *testing.T) {
		rs, err := sm.SendSession(t, env,
			sendmailtest.Mail{MailFrom: "bounces@forwarder.test", Rcpts: []string{"bob@example.test"}, Data: []byte(mail("example.com", "first", ""))},
			sendmailtest.Mail{MailFrom: "alice@example.com", Rcpts: []string{"bob@example.test"}, Data: []byte(mail("example.com", "second", ""))},
		)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 2 || rs[0].Code != 550 || rs[1].Code != 250 {
			t.Fatalf("results %+v, want 550 then 250", rs)
		}
		delivered++
		d := findSendmailDelivered(t, sm.WaitDelivered(t, delivered, 10*time.Second), "second")
		ar := d.Get("Authentication-Results")
		for _, want := range []string{"spf=pass", "smtp.mailfrom=alice@example.com", "smtp.helo=mail.example.com", "dmarc=pass"} {
			if !strings.Contains(ar, want) {
				t.Errorf("second message A-R %q lacks %q: client facts lost", ar, want)
			}
		}
	})

	t.Run("IPv6 client: Sendmail's IPv6: address", func(t *testing.T) {
		if !ipv6 {
			t.Skip("no IPv6 loopback")
		}
		e := env
		e.IPv6, e.MailFrom = true, "alice@v6.example"
		r, err := sm.Send(t, e, []byte(mail("v6.example", "ipv6", "")))
		if err != nil || r.Code != 250 {
			t.Fatalf("send: %+v %v (the daemon did not see ::1 as the client)", r, err)
		}
		delivered++
		d := findSendmailDelivered(t, sm.WaitDelivered(t, delivered, 10*time.Second), "ipv6")
		ar := d.Get("Authentication-Results")
		for _, want := range []string{"spf=pass", "smtp.mailfrom=alice@v6.example", "dmarc=pass"} {
			if !strings.Contains(ar, want) {
				t.Errorf("A-R %q lacks %q", ar, want)
			}
		}
		// And Sendmail did write the address in its own form.
		var addrs []string
		for _, p := range rec.Packets() {
			if p.FromMTA && p.Cmd == milter.CmdConnect {
				if _, fam, _, a, err := p.Connect(); err == nil && fam == milter.FamilyInet6 {
					addrs = append(addrs, a)
				}
			}
		}
		if len(addrs) == 0 || !strings.HasPrefix(addrs[len(addrs)-1], "IPv6:") {
			t.Errorf("IPv6 connect addresses %q, want Sendmail's IPv6: form", addrs)
		}
	})

	t.Run("what Sendmail sent the milter", func(t *testing.T) {
		ps := rec.Packets()
		if len(ps) == 0 {
			t.Skip("no message was sent (subtests filtered out)")
		}
		var b strings.Builder
		for _, p := range ps {
			if (p.FromMTA && p.Cmd == milter.CmdBody) || (!p.FromMTA && p.Cmd == milter.RespContinue) {
				continue // body chunks and "continue" replies
			}
			b.WriteString(p.String() + "\n")
		}
		t.Logf("milter packets (negotiation, macros, connect address):\n%s", b.String())
		checkSendmailNegotiation(t, ps)
	})

	t.Run("daemon down: F=T makes Sendmail tempfail", func(t *testing.T) {
		x.stopDaemon(t)
		r, err := sm.Send(t, env, []byte(mail("example.com", "unjudged", "")))
		if err != nil {
			t.Fatal(err)
		}
		if r.Code/100 != 4 {
			t.Fatalf("with the milter down Sendmail answered %+v, want 4xx (F=T)", r)
		}
	})
}

// checkSendmailNegotiation checks that Sendmail took the daemon's macro
// lists: {client_addr} at connect, i at MAIL FROM.
func checkSendmailNegotiation(t *testing.T, ps []sendmailtest.Packet) {
	t.Helper()
	macros := map[byte]map[string]string{}
	for _, p := range ps {
		if p.FromMTA && p.Cmd == milter.CmdMacro && p.Conn == 1 {
			c, pairs, err := p.Macros()
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]string{}
			for _, kv := range pairs {
				m[kv[0]] = kv[1]
			}
			macros[c] = m
		}
	}
	if a := macros[milter.CmdConnect]["{client_addr}"]; a != "127.0.0.1" {
		t.Errorf("connect macros %q: want {client_addr}=127.0.0.1 (SymList honoured)", macros[milter.CmdConnect])
	}
	if macros[milter.CmdMail]["i"] == "" {
		t.Errorf("MAIL FROM macros %q: want the queue id i", macros[milter.CmdMail])
	}
}

func findSendmailDelivered(t *testing.T, ds []sendmailtest.Delivered, subject string) sendmailtest.Delivered {
	t.Helper()
	for _, d := range ds {
		if d.Get("Subject") == subject {
			return d
		}
	}
	t.Fatalf("no delivered message with Subject %q", subject)
	return sendmailtest.Delivered{}
}
