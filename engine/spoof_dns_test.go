package engine

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"strings"
	"testing"
	"time"

	msgauthdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/verify"
)

// Issue #17, through the engine: a message From ceo@victim.example
// (p=reject) sent by attacker.example, whose own DNS fails, must be
// rejected whatever that DNS does and whatever policy.temperror says. The
// helpers are this file's own so that it moves with the engine as a unit.

// spoofWorld is the DNS of the spoof tests and the attacker's DKIM key.
type spoofWorld struct {
	dns *dnstest.Resolver
	key ed25519.PrivateKey
}

func newSpoofWorld(t *testing.T) *spoofWorld {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	return &spoofWorld{key: key, dns: &dnstest.Resolver{
		TXT: map[string][]string{
			"victim.example":                     {"v=spf1 ip4:192.0.2.0/24 -all"},
			"_dmarc.victim.example":              {"v=DMARC1; p=reject"},
			"sel._domainkey.attacker.example":    {pub},
			"sel._domainkey.mail.victim.example": {pub},
			"mail.victim.example":                {"v=spf1 -all"},
			"bounces.attacker.example":           {"v=spf1 -all"},
		},
		A:    map[string][]string{"victim.example": {"192.0.2.1"}},
		Fail: map[string]dnstest.Failure{},
	}}
}

// spoofMessage returns a message From ceo@victim.example, DKIM-signed for
// signDomain unless that is empty.
func (w *spoofWorld) spoofMessage(t *testing.T, signDomain string) string {
	t.Helper()
	msg := "From: CEO <ceo@victim.example>\r\nTo: bob@mx.test\r\nSubject: wire the money\r\n" +
		"Date: Tue, 24 Nov 2026 08:00:00 +0000\r\nMessage-ID: <1@attacker.example>\r\n\r\nNow.\r\n"
	if signDomain == "" {
		return msg
	}
	var out bytes.Buffer
	err := msgauthdkim.Sign(&out, strings.NewReader(msg), &msgauthdkim.SignOptions{
		Domain: signDomain, Selector: "sel", Signer: crypto.Signer(w.key),
		HeaderCanonicalization: msgauthdkim.CanonicalizationRelaxed,
		BodyCanonicalization:   msgauthdkim.CanonicalizationRelaxed,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// judge feeds msg through a Message as the milter session does.
func (w *spoofWorld) judge(t *testing.T, mode TemperrorMode, mailFrom, msg string) *Verdict {
	t.Helper()
	pol := DefaultPolicy()
	pol.Temperror = mode
	e := &Engine{Resolver: w.dns, AuthservID: "mx.test", Policy: pol, Timeout: 5 * time.Second}
	env := Envelope{ClientIP: netip.MustParseAddr("198.51.100.7"), HELO: "mail.attacker.example", MailFrom: mailFrom, Rcpts: []string{"bob@mx.test"}}
	br := bufio.NewReader(strings.NewReader(msg))
	fields, err := message.ReadHeader(br, message.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m := e.Begin(context.Background(), env)
	// The speculation started at MAIL FROM asks the MAIL FROM domain's
	// _dmarc names (the sender's, here) to warm the cache; its answers
	// decide nothing. Wait for it so that the query log from here on is
	// the verdict's alone.
	if m.specDone != nil {
		<-m.specDone
	}
	w.dns.ResetQueries()
	for _, f := range fields {
		m.Header(f)
	}
	m.EndOfHeaders()
	if err := message.BodyCRLF(br, 64, func(c []byte) error { m.Body(c); return nil }); err != nil {
		t.Fatal(err)
	}
	return m.End()
}

// TestEngineSpoofersDNSCannotDecide: the six runs of issue #17 (SPF
// temperror or an attacker's DKIM pass; _dmarc.attacker.example SERVFAIL,
// timeout or NXDOMAIN), under policy.temperror tempfail and accept: always
// dmarc=fail, 550, and _dmarc.attacker.example never asked.
func TestEngineSpoofersDNSCannotDecide(t *testing.T) {
	t.Parallel()
	type vector struct {
		mailFrom, signer string
		spf, dkim        verify.Status
	}
	vectors := map[string]vector{
		// Every SPF lookup of attacker.example fails temporarily.
		"SPF temperror": {"x@attacker.example", "", verify.StatusTemperror, ""},
		// A valid signature of the attacker's own domain.
		"attacker DKIM pass": {"x@bounces.attacker.example", "attacker.example", verify.StatusFail, verify.StatusPass},
	}
	ways := map[string]dnstest.Failure{"SERVFAIL": dnstest.ServFail, "timeout": dnstest.Timeout, "NXDOMAIN": 0}
	for vn, vec := range vectors {
		for wn, f := range ways {
			for _, mode := range []TemperrorMode{TemperrorTempfail, TemperrorAccept} {
				t.Run(vn+"/"+wn+"/"+string(mode), func(t *testing.T) {
					t.Parallel()
					w := newSpoofWorld(t)
					w.dns.Fail["attacker.example/TXT"] = dnstest.ServFail
					if f != 0 {
						w.dns.Fail["_dmarc.attacker.example"] = f
					}
					v := w.judge(t, mode, vec.mailFrom, w.spoofMessage(t, vec.signer))
					if v.SPF == nil || v.SPF.Status != vec.spf {
						t.Fatalf("spf %+v, want %s", v.SPF, vec.spf)
					}
					if vec.dkim != "" && (len(v.DKIM) != 1 || v.DKIM[0].Status != vec.dkim) {
						t.Fatalf("dkim %+v, want %s", v.DKIM, vec.dkim)
					}
					if v.DMARC.Status != verify.StatusFail || v.Action != ActionReject || !strings.HasPrefix(v.Reply, "550 5.7.1") {
						t.Fatalf("dmarc %s (%s), action %s %q; want fail, reject, 550", v.DMARC.Status, v.DMARC.Reason, v.Action, v.Reply)
					}
					if v.DMARC.SkippedWalks != 1 {
						t.Errorf("SkippedWalks %d, want 1", v.DMARC.SkippedWalks)
					}
					for _, q := range w.dns.Queries() {
						if strings.Contains(q, "_dmarc.") && strings.Contains(q, "attacker") {
							t.Errorf("asked %s: the sender's DNS decided nothing, it must not be asked", q)
						}
					}
				})
			}
		}
	}
}

// TestEngineOwnDNSStillTemperror: failures of lookups the RFC requires
// still give temperror: 451 with policy.temperror tempfail, accept with
// accept.
func TestEngineOwnDNSStillTemperror(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, fail, signer string
	}{
		{"walk from d=mail.victim.example fails", "_dmarc.mail.victim.example", "mail.victim.example"},
		{"the Author Domain's own _dmarc fails", "_dmarc.victim.example", "attacker.example"},
	}
	for _, tc := range tests {
		for _, mode := range []TemperrorMode{TemperrorTempfail, TemperrorAccept} {
			t.Run(tc.name+"/"+string(mode), func(t *testing.T) {
				t.Parallel()
				w := newSpoofWorld(t)
				w.dns.Fail[tc.fail] = dnstest.ServFail
				v := w.judge(t, mode, "x@bounces.attacker.example", w.spoofMessage(t, tc.signer))
				if len(v.DKIM) != 1 || v.DKIM[0].Status != verify.StatusPass {
					t.Fatalf("dkim %+v, want pass", v.DKIM)
				}
				if v.DMARC.Status != verify.StatusTemperror {
					t.Fatalf("dmarc %s (%s), want temperror", v.DMARC.Status, v.DMARC.Reason)
				}
				wantAction, wantReply := ActionTempfail, "451 4.7.1"
				if mode == TemperrorAccept {
					wantAction, wantReply = ActionAccept, ""
				}
				if v.Action != wantAction || !strings.HasPrefix(v.Reply, wantReply) {
					t.Errorf("action %s %q, want %s %q", v.Action, v.Reply, wantAction, wantReply)
				}
			})
		}
	}
}
