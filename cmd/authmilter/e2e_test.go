package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	msgauthdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/postfixtest"
	"github.com/authmilter/authmilter/internal/testsupport/syncbuf"
	"github.com/authmilter/authmilter/verify"
)

// e2e is a running daemon with its DNS, keys and configuration.
type e2e struct {
	dns      *dnstest.Resolver
	dkimKey  ed25519.PrivateKey
	sealPath string
	cfgPath  string
	log      *syncbuf.Buffer
	addr     string
	stop     context.CancelFunc
	done     chan error
}

func newE2E(t testing.TB) *e2e {
	t.Helper()
	_, dk, _ := ed25519.GenerateKey(rand.Reader)
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	pub := func(k ed25519.PrivateKey) string {
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
	}
	dir := t.TempDir()
	der, err := x509.MarshalPKCS8PrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	sealPath := filepath.Join(dir, "seal.key")
	if err := os.WriteFile(sealPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	x := &e2e{
		dkimKey:  dk,
		sealPath: sealPath,
		log:      &syncbuf.Buffer{},
		dns: &dnstest.Resolver{TXT: map[string][]string{
			"example.com":                    {"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"},
			"_dmarc.example.com":             {"v=DMARC1; p=reject"},
			"sel._domainkey.example.com":     {pub(dk)},
			"quarantined.example":            {"v=spf1 -all"},
			"_dmarc.quarantined.example":     {"v=DMARC1; p=quarantine"},
			"seal._domainkey.forwarder.test": {pub(sk)},
			"mail.example.com":               {"v=spf1 a -all"},
			// bücher.example (issue #25): the DNS holds A-labels only.
			"xn--bcher-kva.example":                {"v=spf1 ip4:192.0.2.0/24 -all"},
			"mx.xn--bcher-kva.example":             {"v=spf1 ip4:192.0.2.0/24 -all"},
			"_dmarc.xn--bcher-kva.example":         {"v=DMARC1; p=reject"},
			"sel._domainkey.xn--bcher-kva.example": {pub(dk)},
		}, A: map[string][]string{"mail.example.com": {"192.0.2.10"}},
			// iprev: mail.example.com is 192.0.2.10 both ways.
			PTR: map[string][]string{dnscache.ReverseName(netip.MustParseAddr("192.0.2.10")): {"mail.example.com."}}},
	}
	dnsAddr := dnstest.Serve(t, x.dns)
	x.cfgPath = filepath.Join(dir, "authmilter.yaml")
	cfg := fmt.Sprintf(`listen: inet:127.0.0.1:0
authserv_id: mx.e2e.test
log: {level: debug}
dns:
  servers: [%q]
  timeout: 1s
arc:
  seal: {domain: forwarder.test, selector: seal, key_file: %q}
policy:
  internal_networks: []
`, dnsAddr, sealPath)
	if err := os.WriteFile(x.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return x
}

// start runs the daemon (on listen, or on the configured address when
// empty) until stopDaemon or the end of the test.
func (x *e2e) start(t testing.TB, listen string) {
	t.Helper()
	path := x.cfgPath
	if listen != "" {
		data, _ := os.ReadFile(x.cfgPath)
		data = bytes.Replace(data, []byte("listen: inet:127.0.0.1:0"), []byte("listen: "+listen), 1)
		path = x.cfgPath + ".restart"
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	x.done = make(chan error, 1)
	x.stop = cancel
	go func() { x.done <- serve(ctx, path, x.log, nil, func(a net.Addr) { ready <- a }) }()
	select {
	case a := <-ready:
		x.addr = a.String()
	case err := <-x.done:
		t.Fatalf("daemon did not start: %v\n%s", err, x.log.String())
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not start in 10s")
	}
	t.Cleanup(func() { x.stopDaemon(t) })
}

func (x *e2e) stopDaemon(t testing.TB) {
	if x.stop == nil {
		return
	}
	x.stop()
	x.stop = nil
	if err := <-x.done; err != nil {
		t.Errorf("daemon exit: %v", err)
	}
}

func (x *e2e) sign(t testing.TB, msg string) []byte {
	t.Helper()
	var out bytes.Buffer
	err := msgauthdkim.Sign(&out, strings.NewReader(msg), &msgauthdkim.SignOptions{
		Domain: "example.com", Selector: "sel", Signer: crypto.Signer(x.dkimKey),
		HeaderCanonicalization: msgauthdkim.CanonicalizationRelaxed,
		BodyCanonicalization:   msgauthdkim.CanonicalizationSimple,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func mail(from, subject, extra string) string {
	return extra + "From: Alice <alice@" + from + ">\r\nTo: bob@example.test\r\nSubject: " + subject +
		"\r\nDate: Tue, 24 Nov 2026 08:00:00 +0000\r\nMessage-ID: <" + subject + "@" + from + ">\r\n\r\nHello Bob.\r\n"
}

func findDelivered(t *testing.T, ds []postfixtest.Delivered, subject string) postfixtest.Delivered {
	t.Helper()
	for _, d := range ds {
		if d.Get("Subject") == subject {
			return d
		}
	}
	t.Fatalf("no delivered message with Subject %q", subject)
	return postfixtest.Delivered{}
}

// TestPostfixEndToEnd drives a real Postfix on loopback with the daemon as
// its milter.
func TestPostfixEndToEnd(t *testing.T) {
	x := newE2E(t)
	x.start(t, "")
	pf := postfixtest.Start(t, postfixtest.Options{Milter: "inet:" + x.addr, MilterDefaultAction: "tempfail"})
	good := postfixtest.Envelope{HeloName: "mail.example.com", ClientIP: "192.0.2.10", ClientName: "mail.example.com",
		MailFrom: "alice@example.com", Rcpts: []string{"bob@example.test"}}
	fromList := postfixtest.Envelope{HeloName: "list.forwarder.test", ClientIP: "198.51.100.7",
		MailFrom: "bounces@forwarder.test", Rcpts: []string{"bob@example.test"}}
	delivered := 0

	t.Run("accepted with Authentication-Results, forged one removed, sealed", func(t *testing.T) {
		msg := x.sign(t, mail("example.com", "accepted", "Authentication-Results: mx.e2e.test; dmarc=pass header.from=example.com\r\n"))
		code, reply, err := pf.Send(t, good, msg)
		if err != nil || code != 250 {
			t.Fatalf("send: %d %s %v\n%s", code, reply, err, x.log.String())
		}
		delivered++
		d := findDelivered(t, pf.WaitDelivered(t, delivered, 20*time.Second), "accepted")
		t.Logf("delivered:\n%s", d.Raw)
		ars := d.Values("Authentication-Results")
		if len(ars) != 1 {
			t.Fatalf("Authentication-Results fields %q, want exactly ours", ars)
		}
		for _, want := range []string{"mx.e2e.test", "spf=pass", "smtp.mailfrom=alice@example.com", "dkim=pass", "header.d=example.com", "dmarc=pass", "header.from=example.com"} {
			if !strings.Contains(ars[0], want) {
				t.Errorf("A-R %q lacks %q", ars[0], want)
			}
		}
		if d.Get("ARC-Seal") == "" || d.Get("ARC-Message-Signature") == "" || d.Get("ARC-Authentication-Results") == "" {
			t.Fatalf("no ARC set in the delivered message:\n%s", d.Raw)
		}
		// The delivered message, minus what virtual(8) and smtpd added,
		// carries a valid chain.
		res, err := arc.Validate(context.Background(), x.dns, bytes.NewReader(d.Raw), nil)
		if err != nil || res.Status != verify.StatusPass {
			t.Errorf("delivered ARC chain: %+v %v", res, err)
		}
	})

	t.Run("DMARC reject is a 550 with our text", func(t *testing.T) {
		code, reply, err := pf.Send(t, fromList, []byte(mail("example.com", "rejected", "")))
		if err != nil {
			t.Fatal(err)
		}
		if code != 550 || !strings.Contains(reply, "5.7.1") || !strings.Contains(reply, "DMARC policy of example.com is reject") {
			t.Fatalf("got %d %q, want 550 5.7.1 naming example.com's reject policy", code, reply)
		}
	})

	t.Run("quarantine goes to the hold queue", func(t *testing.T) {
		code, reply, err := pf.Send(t, fromList, []byte(mail("quarantined.example", "held", "")))
		if err != nil || code != 250 {
			t.Fatalf("send: %d %s %v", code, reply, err)
		}
		held := pf.HoldQueue(t)
		if len(held) != 1 {
			t.Fatalf("hold queue %v, want one message\n%s", held, pf.LogTail(20))
		}
		if m := pf.HeldMessage(t, held[0]); !bytes.Contains(m, []byte("dmarc=fail")) {
			t.Errorf("held message lacks our verdict:\n%s", m)
		}
	})

	t.Run("two messages on one connection, the first rejected", func(t *testing.T) {
		results, err := pf.SendSession(t, good,
			postfixtest.Mail{MailFrom: "bounces@forwarder.test", Rcpts: []string{"bob@example.test"}, Data: []byte(mail("example.com", "first", ""))},
			postfixtest.Mail{MailFrom: "alice@example.com", Rcpts: []string{"bob@example.test"}, Data: []byte(mail("example.com", "second", ""))},
		)
		if err != nil {
			t.Fatal(err)
		}
		if results[0].Code != 550 || results[1].Code != 250 {
			t.Fatalf("results %+v", results)
		}
		delivered++
		d := findDelivered(t, pf.WaitDelivered(t, delivered, 20*time.Second), "second")
		ar := d.Get("Authentication-Results")
		for _, want := range []string{"spf=pass", "smtp.mailfrom=alice@example.com", "smtp.helo=mail.example.com", "dmarc=pass"} {
			if !strings.Contains(ar, want) {
				t.Errorf("second message A-R %q lacks %q: client facts lost", ar, want)
			}
		}
	})

	t.Run("IPv6 client", func(t *testing.T) {
		env := good
		env.ClientIP = "2001:db8::25"
		code, reply, err := pf.Send(t, env, []byte(mail("example.com", "ipv6", "")))
		if err != nil || code != 250 {
			t.Fatalf("send: %d %s %v", code, reply, err)
		}
		delivered++
		d := findDelivered(t, pf.WaitDelivered(t, delivered, 20*time.Second), "ipv6")
		if ar := d.Get("Authentication-Results"); !strings.Contains(ar, "spf=pass") {
			t.Errorf("A-R %q", ar)
		}
	})

	t.Run("daemon down: Postfix tempfails, nothing lost", func(t *testing.T) {
		port := x.addr
		x.stopDaemon(t)
		code, _, err := pf.Send(t, good, []byte(mail("example.com", "retried", "")))
		if err != nil {
			t.Fatal(err)
		}
		if code/100 != 4 {
			t.Fatalf("with the milter down Postfix answered %d, want 4xx (milter_default_action=tempfail)", code)
		}
		x.start(t, "inet:"+port)
		// The client retries, as a real sender would.
		code, reply, err := pf.Send(t, good, []byte(mail("example.com", "retried", "")))
		if err != nil || code != 250 {
			t.Fatalf("retry: %d %s %v", code, reply, err)
		}
		delivered++
		d := findDelivered(t, pf.WaitDelivered(t, delivered, 20*time.Second), "retried")
		if !strings.Contains(d.Get("Authentication-Results"), "dmarc=pass") {
			t.Errorf("retried message A-R %q", d.Get("Authentication-Results"))
		}
	})

	if t.Failed() {
		t.Logf("daemon log:\n%s", x.log.String())
	}
}
