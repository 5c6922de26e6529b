package engine

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	msgauthdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/internal/testsupport/syncbuf"
	"github.com/authmilter/authmilter/verify"
)

// world is the DNS and keys of the engine tests.
type world struct {
	dns     *dnstest.Resolver
	dkimKey ed25519.PrivateKey
	sealKey ed25519.PrivateKey
}

func newWorld(t *testing.T) *world {
	t.Helper()
	_, dk, _ := ed25519.GenerateKey(rand.Reader)
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	pub := func(k ed25519.PrivateKey) string {
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
	}
	return &world{
		dkimKey: dk,
		sealKey: sk,
		dns: &dnstest.Resolver{
			TXT: map[string][]string{
				"example.com":                      {"v=spf1 ip4:192.0.2.0/24 -all"},
				"_dmarc.example.com":               {"v=DMARC1; p=reject"},
				"sel._domainkey.example.com":       {pub(dk)},
				"quarantined.example":              {"v=spf1 -all"},
				"_dmarc.quarantined.example":       {"v=DMARC1; p=quarantine"},
				"seal._domainkey.forwarder.test":   {pub(sk)},
				"relaxed.example":                  {"v=spf1 -all"},
				"_dmarc.relaxed.example":           {"v=DMARC1; p=none"},
				"tempfail.example":                 {"v=spf1 -all"},
				"helo.example.com":                 {"v=spf1 ip4:192.0.2.0/24 -all"},
				"mail.forwarder.test":              {"v=spf1 -all"},
				"_dmarc.forwarder.test":            {"v=DMARC1; p=none"},
				"other._domainkey.relaxed.example": {pub(dk)},
			},
			Fail: map[string]dnstest.Failure{"_dmarc.tempfail.example": dnstest.ServFail},
		},
	}
}

func (w *world) engine(mod ...func(*Engine)) *Engine {
	e := &Engine{
		Resolver:   w.dns,
		AuthservID: "mx.test",
		Policy:     DefaultPolicy(),
		Timeout:    5 * time.Second,
	}
	for _, f := range mod {
		f(e)
	}
	return e
}

func msgText(from, extra, body string) string {
	return extra + "From: Alice <alice@" + from + ">\r\nTo: bob@mx.test\r\nSubject: test\r\n" +
		"Date: Tue, 24 Nov 2026 08:00:00 +0000\r\nMessage-ID: <1@" + from + ">\r\n\r\n" + body
}

func (w *world) sign(t *testing.T, domain, selector, msg string) string {
	t.Helper()
	var out bytes.Buffer
	err := msgauthdkim.Sign(&out, strings.NewReader(msg), &msgauthdkim.SignOptions{
		Domain: domain, Selector: selector, Signer: crypto.Signer(w.dkimKey),
		HeaderCanonicalization: msgauthdkim.CanonicalizationRelaxed,
		BodyCanonicalization:   msgauthdkim.CanonicalizationRelaxed,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// run feeds msg through an Evaluation as the milter session does.
func run(t *testing.T, e *Engine, env Envelope, msg string) (*Verdict, []message.Field, string) {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(msg))
	fields, err := message.ReadHeader(br, message.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m := e.Begin(context.Background(), env)
	for _, f := range fields {
		m.Header(f)
	}
	m.EndOfHeaders()
	var body bytes.Buffer
	if err := message.BodyCRLF(br, 7, func(c []byte) error { body.Write(c); m.Body(c); return nil }); err != nil {
		t.Fatal(err)
	}
	return m.End(), fields, body.String()
}

func env(ip, helo, from string) Envelope {
	return Envelope{ClientIP: netip.MustParseAddr(ip), HELO: helo, MailFrom: from, Rcpts: []string{"bob@mx.test"}}
}

func TestEngineVerdicts(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	signed := w.sign(t, "example.com", "sel", msgText("example.com", "", "Hello.\r\n"))
	tests := []struct {
		name    string
		env     Envelope
		msg     string
		action  Action
		reply   string
		ar      []string // substrings of our Authentication-Results
		noAR    bool
		removed []int
	}{
		{
			name:   "SPF pass aligned",
			env:    env("192.0.2.10", "helo.example.com", "alice@example.com"),
			msg:    msgText("example.com", "", "Hi.\r\n"),
			action: ActionAccept,
			ar:     []string{"mx.test;", "spf=pass", "smtp.mailfrom=alice@example.com", "smtp.helo=helo.example.com", "dkim=none", "dmarc=pass", "header.from=example.com", "arc=none"},
		},
		{
			name:   "DMARC reject",
			env:    env("198.51.100.7", "bad.example.net", "alice@example.com"),
			msg:    msgText("example.com", "", "Hi.\r\n"),
			action: ActionReject,
			reply:  "550 5.7.1 Message rejected: DMARC policy of example.com is reject",
			noAR:   true,
		},
		{
			name:   "DKIM pass saves a forwarded message",
			env:    env("198.51.100.7", "mail.forwarder.test", "list@mail.forwarder.test"),
			msg:    signed,
			action: ActionAccept,
			ar:     []string{"spf=fail", "dkim=pass", "header.d=example.com", "header.s=sel", "header.a=ed25519-sha256", "dmarc=pass"},
		},
		{
			name:   "DKIM fail after a body change",
			env:    env("198.51.100.7", "mail.forwarder.test", "list@mail.forwarder.test"),
			msg:    strings.Replace(signed, "Hello.", "Hullo.", 1),
			action: ActionReject,
			reply:  "550 5.7.1 ",
			noAR:   true,
		},
		{
			name:   "quarantine",
			env:    env("198.51.100.7", "x.example.net", "a@quarantined.example"),
			msg:    msgText("quarantined.example", "", "Hi.\r\n"),
			action: ActionQuarantine,
			ar:     []string{"dmarc=fail", "policy.dmarc=quarantine"},
		},
		{
			name:   "temperror",
			env:    env("198.51.100.7", "x.example.net", "a@tempfail.example"),
			msg:    msgText("tempfail.example", "", "Hi.\r\n"),
			action: ActionTempfail,
			reply:  "451 4.7.1 ",
			noAR:   true,
		},
		{
			name:    "forged Authentication-Results removed",
			env:     env("192.0.2.10", "helo.example.com", "alice@example.com"),
			msg:     msgText("example.com", "Authentication-Results: mx.test; dkim=pass header.d=example.com\r\nAuthentication-Results: other.test; spf=pass\r\nAuthentication-Results: (sneaky)\r\n MX.TEST 1; dmarc=pass\r\n", "Hi.\r\n"),
			action:  ActionAccept,
			ar:      []string{"dmarc=pass"},
			removed: []int{3, 1},
		},
		{
			name:   "internal network not judged",
			env:    env("127.0.0.1", "localhost", "alice@example.com"),
			msg:    msgText("example.com", "", "Hi.\r\n"),
			action: ActionAccept,
			noAR:   true,
		},
		{
			name:   "authenticated submission not judged",
			env:    Envelope{ClientIP: netip.MustParseAddr("198.51.100.7"), HELO: "laptop", MailFrom: "alice@example.com", AuthUser: "alice"},
			msg:    msgText("example.com", "", "Hi.\r\n"),
			action: ActionAccept,
			noAR:   true,
		},
		{
			// RFC 7208 §2.4: postmaster@<HELO>; RFC 9989: the HELO domain
			// is the SPF identifier, here aligned (relaxed) with example.com.
			name:   "null reverse-path uses HELO",
			env:    env("192.0.2.10", "helo.example.com", ""),
			msg:    msgText("example.com", "", "Hi.\r\n"),
			action: ActionAccept,
			ar:     []string{"spf=pass", "postmaster@helo.example.com", "dmarc=pass"},
		},
		{
			name:   "null reverse-path, HELO of another domain",
			env:    env("198.51.100.7", "mail.forwarder.test", ""),
			msg:    msgText("example.com", "", "Hi.\r\n"),
			action: ActionReject,
			reply:  "550 5.7.1 ",
			noAR:   true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, _, _ := run(t, w.engine(), tc.env, tc.msg)
			if v.Action != tc.action || !strings.HasPrefix(v.Reply, tc.reply) {
				t.Fatalf("action %s reply %q, want %s %q…\nA-R: %s\nDMARC: %+v", v.Action, v.Reply, tc.action, tc.reply, v.AuthResults, v.DMARC)
			}
			ar := ""
			for _, f := range v.Insert {
				if f.Name == "Authentication-Results" {
					ar = f.Value()
				}
			}
			if tc.noAR != (ar == "") {
				t.Fatalf("Authentication-Results field %q, want one: %v", ar, !tc.noAR)
			}
			for _, s := range tc.ar {
				if !strings.Contains(ar, s) {
					t.Errorf("Authentication-Results %q lacks %q", ar, s)
				}
			}
			if len(tc.removed) > 0 || len(v.RemoveAR) > 0 {
				if len(v.RemoveAR) != len(tc.removed) {
					t.Fatalf("RemoveAR = %v, want %v", v.RemoveAR, tc.removed)
				}
				for i := range tc.removed {
					if v.RemoveAR[i] != tc.removed[i] {
						t.Fatalf("RemoveAR = %v, want %v", v.RemoveAR, tc.removed)
					}
				}
			}
		})
	}
}

func TestEngineHeaderLimit(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	e := w.engine(func(e *Engine) { e.MaxHeaders = 3 })
	v, _, _ := run(t, e, env("198.51.100.7", "x.example.net", "alice@example.com"),
		msgText("example.com", "Authentication-Results: mx.test; spf=pass\r\n", "Hi.\r\n"))
	if v.Action != ActionAccept || v.LimitErr == nil || v.DMARC.Status != verify.StatusPermerror {
		t.Fatalf("over the header limit: action %s, limit %v, dmarc %s", v.Action, v.LimitErr, v.DMARC.Status)
	}
	if len(v.RemoveAR) != 1 {
		t.Errorf("forged header not removed past the limit: %v", v.RemoveAR)
	}
	if !strings.Contains(v.AuthResults, "dmarc=permerror") {
		t.Errorf("A-R %q", v.AuthResults)
	}
}

func TestEngineSealsAndChainValidates(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	e := w.engine(func(e *Engine) {
		e.Sealer = &arc.Sealer{Domain: "forwarder.test", Selector: "seal", Key: w.sealKey}
	})
	signed := w.sign(t, "example.com", "sel", msgText("example.com", "Authentication-Results: mx.test; dkim=pass\r\n", "Hello.\r\n"))
	v, fields, body := run(t, e, env("192.0.2.10", "helo.example.com", "alice@example.com"), signed)
	if v.Action != ActionAccept || !v.Sealed || v.SealErr != nil {
		t.Fatalf("action %s sealed %v err %v", v.Action, v.Sealed, v.SealErr)
	}
	out := ApplyHeader(fields, v)
	var names []string
	for _, f := range out[:4] {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "ARC-Seal,ARC-Message-Signature,ARC-Authentication-Results,Authentication-Results" {
		t.Fatalf("top fields %s", got)
	}
	var msg bytes.Buffer
	for _, f := range out {
		msg.Write(f.Raw)
	}
	msg.WriteString("\r\n" + body)
	res, err := arc.Validate(context.Background(), w.dns, bytes.NewReader(msg.Bytes()), nil)
	if err != nil || res.Status != verify.StatusPass || res.Instances != 1 {
		t.Fatalf("sealed chain: %+v %v\n%s", res, err, msg.String())
	}
	if !strings.Contains(res.Sets[0].AAR, "dkim=pass") || !strings.Contains(res.Sets[0].AAR, "mx.test") {
		t.Errorf("AAR %q", res.Sets[0].AAR)
	}
	// The forged A-R must not reach the next hop.
	if strings.Count(msg.String(), "Authentication-Results: mx.test") != 1 {
		t.Errorf("forged A-R still present:\n%s", msg.String())
	}

}

func TestEngineTrustedSealerOverride(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// A mailing list at forwarder.test verified the original (dmarc=pass),
	// added a footer, which breaks the author's DKIM signature, and sealed
	// the changed message.
	signed := w.sign(t, "example.com", "sel", msgText("example.com", "", "Hello.\r\n"))
	changed := strings.Replace(signed, "Hello.\r\n", "Hello.\r\n-- \r\nlist footer\r\n", 1)
	relayed := w.seal(t, changed,
		"spf=pass smtp.mailfrom=alice@example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com")

	from := env("198.51.100.7", "mail.forwarder.test", "list@mail.forwarder.test")
	plain, _, _ := run(t, w.engine(), from, relayed)
	if plain.DMARC.Status != verify.StatusFail || plain.ARC.Status != verify.StatusPass || plain.Action != ActionReject {
		t.Fatalf("without trust: dmarc %s arc %s (%s) action %s", plain.DMARC.Status, plain.ARC.Status, plain.ARC.Reason, plain.Action)
	}
	trusting := w.engine(func(e *Engine) { e.Policy.TrustedSealers = []string{"forwarder.test"} })
	v, _, _ := run(t, trusting, from, relayed)
	if v.Action != ActionAccept || v.Override.Type != OverrideTrustedForwarder {
		t.Fatalf("trusted sealer: action %s override %q", v.Action, v.Override)
	}
	if !strings.Contains(v.AuthResults, "dmarc=fail") || !strings.Contains(unfoldAR(v.AuthResults), "override "+v.Override.String()) || !strings.Contains(v.AuthResults, "arc=pass") {
		t.Errorf("A-R does not record the override: %s", v.AuthResults)
	}
	// The aggregate report names the sealer (RFC 9990 §2.1.6).
	rec := reportRecord(from, v, false, time.Now())
	if rs := rec.Row.Reasons; len(rs) != 1 || rs[0].Type != "trusted_forwarder" || !strings.Contains(rs[0].Comment, "forwarder.test") || rec.Row.Disposition != "none" {
		t.Errorf("report row: %+v", rec.Row)
	}
}

func TestEngineHeaderBytesLimitAndLateForgery(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	e := w.engine(func(e *Engine) { e.MaxHeaderBytes = 200 })
	// The forged field comes after the limit is hit: it must still go.
	msg := msgText("example.com", "X-Padding: "+strings.Repeat("p", 300)+"\r\n", "Hi.\r\n")
	msg = strings.Replace(msg, "\r\n\r\n", "\r\nAuthentication-Results: mx.test; dmarc=pass\r\n\r\n", 1)
	v, _, _ := run(t, e, env("198.51.100.7", "x.example.net", "alice@example.com"), msg)
	if v.LimitErr == nil || !strings.Contains(v.LimitErr.Error(), "200 bytes") {
		t.Fatalf("limit error %v", v.LimitErr)
	}
	if v.Action != ActionAccept || v.DMARC.Status != verify.StatusPermerror {
		t.Fatalf("action %s dmarc %s: a message over the header limit is passed on unjudged", v.Action, v.DMARC.Status)
	}
	if len(v.RemoveAR) != 1 || v.RemoveAR[0] != 1 {
		t.Errorf("forged A-R after the limit not removed: %v", v.RemoveAR)
	}
	if v.Sealed {
		t.Error("a truncated header must not be sealed")
	}
}

func TestEngineHeaderFieldLimit(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	e := w.engine(func(e *Engine) { e.MaxHeaderFieldBytes = 1000 })
	long := "X-Long: " + strings.Repeat("word ", 150) + "\r\n\t" + strings.Repeat("more ", 150) + "\r\n"
	v, _, _ := run(t, e, env("198.51.100.7", "x.example.net", "alice@example.com"), msgText("example.com", long, "Hi.\r\n"))
	if v.LimitErr == nil || !strings.Contains(v.LimitErr.Error(), "X-Long field of more than 1000 bytes") {
		t.Fatalf("limit error %v", v.LimitErr)
	}
	if v.Action != ActionAccept || v.DMARC.Status != verify.StatusPermerror {
		t.Fatalf("action %s dmarc %s", v.Action, v.DMARC.Status)
	}
	// Just under the bound is fine.
	v, _, _ = run(t, w.engine(func(e *Engine) { e.MaxHeaderFieldBytes = 2000 }), env("192.0.2.10", "x.example.net", "alice@example.com"), msgText("example.com", long, "Hi.\r\n"))
	if v.LimitErr != nil || v.DMARC.Status != verify.StatusPass {
		t.Fatalf("under the bound: %v %s", v.LimitErr, v.DMARC.Status)
	}
}

// TestEngineDMARCDiscoveredOnce: the policy discovery started at end of
// headers is what End evaluates with, not a second walk.
func TestEngineDMARCDiscoveredOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// No speculation at MAIL FROM: with no cache in front of w.dns it
	// would ask the same name once more (speculate_test.go covers it).
	noSpec := func(e *Engine) { e.SpeculativeQueries = -1 }
	v, _, _ := run(t, w.engine(noSpec), env("192.0.2.10", "helo.example.com", "alice@example.com"), msgText("example.com", "", "Hi.\r\n"))
	if v.DMARC.Status != verify.StatusPass {
		t.Fatalf("dmarc %s", v.DMARC.Status)
	}
	n := 0
	for _, q := range w.dns.Queries() {
		if q == "TXT _dmarc.example.com" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("_dmarc.example.com asked %d times, want 1: %v", n, w.dns.Queries())
	}
}

// TestEngineLogLevel: the message line is written at info, and at warn
// only for a message that had a problem (here over the header limit).
func TestEngineLogLevel(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, tc := range []struct {
		level     slog.Level
		maxHeader int
		want      string // "" for no line
	}{
		{slog.LevelInfo, 0, "level=INFO msg=message"},
		{slog.LevelWarn, 0, ""},
		{slog.LevelWarn, 3, "level=WARN msg=message"},
	} {
		var logs syncbuf.Buffer
		e := w.engine(func(e *Engine) {
			e.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: tc.level}))
			e.MaxHeaders = tc.maxHeader
		})
		run(t, e, env("192.0.2.10", "x.example.net", "alice@example.com"), msgText("example.com", "", "Hi.\r\n"))
		got := logs.String()
		if tc.want == "" && strings.Contains(got, "msg=message") || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("level %v, header limit %d: log %q, want %q", tc.level, tc.maxHeader, got, tc.want)
		}
		if tc.want != "" && !strings.Contains(got, "action=accept") {
			t.Errorf("level %v: the line lacks its fields: %q", tc.level, got)
		}
	}
}
