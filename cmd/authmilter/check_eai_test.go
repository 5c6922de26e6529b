package main

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	msgauthdkim "github.com/emersion/go-msgauth/dkim"
)

// Issue #25: internationalized mail (RFC 8616). bücher.example, whose
// A-label is xn--bcher-kva.example, publishes SPF for 192.0.2.0/24, a DKIM
// key and p=reject; the DNS holds A-labels only.

const eaiALabel = "xn--bcher-kva.example"

type eaiReport struct {
	SPF struct {
		Result, Domain, Reason string
	} `json:"spf"`
	DKIM []struct {
		Result, Domain, Selector, Identifier, Reason string
	} `json:"dkim"`
	DMARC struct {
		Result, Domain, Policy, Disposition, Reason string
	} `json:"dmarc"`
	AR     string `json:"authentication_results"`
	Action string `json:"action"`
	Reply  string `json:"reply"`
}

// eaiFixture writes the zone, and returns its path and the DKIM key.
func eaiFixture(t *testing.T) (zone string, key ed25519.PrivateKey) {
	t.Helper()
	_, key, _ = ed25519.GenerateKey(rand.Reader)
	pub := base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	zone = filepath.Join(t.TempDir(), "eai.zone")
	text := `$ORIGIN ` + eaiALabel + `.
$TTL 300
@               SOA   ns hostmaster 1 3600 600 86400 300
@               TXT   "v=spf1 ip4:192.0.2.0/24 -all"
mx              TXT   "v=spf1 ip4:192.0.2.0/24 -all"
mx              A     192.0.2.5
_dmarc          TXT   "v=DMARC1; p=reject"
sel._domainkey  TXT   "v=DKIM1; k=ed25519; p=` + pub + `"
`
	if err := os.WriteFile(zone, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return zone, key
}

// eaiMessage writes a message From from, DKIM-signed with d=signDomain when
// that is not empty.
func eaiMessage(t *testing.T, key ed25519.PrivateKey, from, signDomain string) string {
	t.Helper()
	msg := "From: Info <" + from + ">\r\nTo: bob@example.net\r\nSubject: Bücher\r\n\r\nHallo.\r\n"
	if signDomain != "" {
		var out bytes.Buffer
		if err := msgauthdkim.Sign(&out, strings.NewReader(msg), &msgauthdkim.SignOptions{
			Domain: signDomain, Selector: "sel", Signer: crypto.Signer(key),
			HeaderKeys: []string{"From", "To", "Subject"},
		}); err != nil {
			t.Fatal(err)
		}
		msg = out.String()
	}
	p := filepath.Join(t.TempDir(), "m.eml")
	if err := os.WriteFile(p, []byte(msg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runEAICheck(t *testing.T, zone, file, ip, helo, mailFrom string) eaiReport {
	t.Helper()
	cfg := writeConfig(t, "authserv_id: mx.check.test\n")
	code, out, errOut := runCmd("check", "--config", cfg, "--zone", zone, "--client-ip", ip,
		"--helo", helo, "--mail-from", mailFrom, "--rcpt", "bob@example.net", "--format", "json", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep eaiReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return rep
}

// The runs of the issue: U-label and A-label MAIL FROM × U-label and
// A-label From, and a null sender with a U-label HELO; mixed case too.
func TestCheckEAIIdentities(t *testing.T) {
	t.Parallel()
	zone, key := eaiFixture(t)
	for _, tc := range []struct {
		name, mailFrom, helo, from, spfDomain string
	}{
		{"u-mailfrom u-from", "<info@bücher.example>", "mx.bücher.example", "info@bücher.example", eaiALabel},
		{"u-mailfrom a-from", "<info@bücher.example>", "mx.bücher.example", "info@" + eaiALabel, eaiALabel},
		{"a-mailfrom u-from", "<info@" + eaiALabel + ">", "mx.bücher.example", "info@bücher.example", eaiALabel},
		{"a-mailfrom a-from", "<info@" + eaiALabel + ">", "mx.bücher.example", "info@" + eaiALabel, eaiALabel},
		{"null sender u-helo", "<>", "mx.bücher.example", "info@bücher.example", "mx." + eaiALabel},
		{"mixed case", "<Info@BÜCHER.Example>", "MX.Bücher.EXAMPLE", "Info@BüCHER.example", eaiALabel},
		{"utf-8 local part", "<jörg@bücher.example>", "mx.bücher.example", "jörg@bücher.example", eaiALabel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := runEAICheck(t, zone, eaiMessage(t, key, tc.from, ""), "192.0.2.5", tc.helo, tc.mailFrom)
			if rep.SPF.Result != "pass" || rep.SPF.Domain != tc.spfDomain {
				t.Errorf("spf %s for %q (%s), want pass for %s", rep.SPF.Result, rep.SPF.Domain, rep.SPF.Reason, tc.spfDomain)
			}
			if rep.DMARC.Result != "pass" || rep.DMARC.Domain != eaiALabel || rep.Action != "accept" {
				t.Errorf("dmarc %s for %q (%s), action %s %s; want pass for %s, accept", rep.DMARC.Result, rep.DMARC.Domain, rep.DMARC.Reason, rep.Action, rep.Reply, eaiALabel)
			}
			// Authentication-Results carries A-labels (see docs).
			if !strings.Contains(rep.AR, "@"+tc.spfDomain) || !strings.Contains(rep.AR, "header.from="+eaiALabel) || strings.Contains(rep.AR, "bücher") {
				t.Errorf("authentication_results %q: want the A-labels", rep.AR)
			}
		})
	}
}

// DKIM: a signature whose d= is a U-label, one whose d= is the A-label of
// a U-label From; sent from outside the SPF record, so DMARC rests on DKIM.
func TestCheckEAIDKIM(t *testing.T) {
	t.Parallel()
	zone, key := eaiFixture(t)
	for _, tc := range []struct{ name, from, d string }{
		{"u-label d=", "info@bücher.example", "bücher.example"},
		{"a-label d=, u-label from", "info@bücher.example", eaiALabel},
		{"u-label d=, a-label from", "info@" + eaiALabel, "Bücher.Example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := runEAICheck(t, zone, eaiMessage(t, key, tc.from, tc.d), "198.51.100.7", "relay.example.net", "<list@lists.example.net>")
			if len(rep.DKIM) != 1 || rep.DKIM[0].Result != "pass" || rep.DKIM[0].Domain != eaiALabel {
				t.Fatalf("dkim %+v, want one pass for %s", rep.DKIM, eaiALabel)
			}
			if rep.DMARC.Result != "pass" || rep.Action != "accept" {
				t.Errorf("dmarc %s (%s), action %s; want pass, accept", rep.DMARC.Result, rep.DMARC.Reason, rep.Action)
			}
			if !strings.Contains(rep.AR, "header.d="+eaiALabel) {
				t.Errorf("authentication_results %q: want header.d=%s", rep.AR, eaiALabel)
			}
		})
	}
	// The same signature from a forger's domain is still a failure.
	rep := runEAICheck(t, zone, eaiMessage(t, key, "info@bücher.example", ""), "198.51.100.7", "relay.example.net", "<list@lists.example.net>")
	if rep.DMARC.Result != "fail" || rep.Action != "reject" {
		t.Errorf("unsigned, SPF elsewhere: dmarc %s action %s; want fail, reject", rep.DMARC.Result, rep.Action)
	}
}

// An invalid U-label gives a clear none or permerror, never a crash, and
// the error names the character, not its first byte.
func TestCheckEAIInvalid(t *testing.T) {
	t.Parallel()
	zone, key := eaiFixture(t)
	rep := runEAICheck(t, zone, eaiMessage(t, key, "info@b≠cher.example", ""), "192.0.2.5", "mx.b≠cher.example", "<info@b≠cher.example>")
	if rep.SPF.Result != "none" || !strings.Contains(rep.SPF.Reason, "'≠' (U+2260)") {
		t.Errorf("spf %s (%s), want none naming '≠'", rep.SPF.Result, rep.SPF.Reason)
	}
	if rep.DMARC.Result != "permerror" || !strings.Contains(rep.DMARC.Reason, "'≠'") {
		t.Errorf("dmarc %s (%s), want permerror naming '≠'", rep.DMARC.Result, rep.DMARC.Reason)
	}
	// Bytes that are not UTF-8 at all (Latin-1 ü).
	rep = runEAICheck(t, zone, eaiMessage(t, key, "info@b\xfccher.example", ""), "192.0.2.5", "mx.example.net", "<info@b\xfccher.example>")
	if rep.SPF.Result != "none" || !strings.Contains(rep.SPF.Reason, "invalid UTF-8") {
		t.Errorf("spf %s (%s), want none for invalid UTF-8", rep.SPF.Result, rep.SPF.Reason)
	}
	if rep.DMARC.Result != "permerror" && rep.DMARC.Result != "none" {
		t.Errorf("dmarc %s (%s), want permerror or none", rep.DMARC.Result, rep.DMARC.Reason)
	}
}

// Policy lists take U-labels or A-labels, and match either form (RFC 8616).
func TestConfigEAIDomainLists(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(writeConfig(t, "authserv_id: mx.check.test\npolicy:\n  allow_domains: [Bücher.Example., xn--mnchen-3ya.example]\narc:\n  trusted_sealers: [Lists.Bücher.example]\n"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := newEngine(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(eng.Policy.AllowDomains, " "); got != eaiALabel+" xn--mnchen-3ya.example" {
		t.Errorf("allow_domains = %q", got)
	}
	if got := strings.Join(eng.Policy.TrustedSealers, " "); got != "lists."+eaiALabel {
		t.Errorf("trusted_sealers = %q", got)
	}
	_, err = LoadConfig(writeConfig(t, "authserv_id: mx.check.test\npolicy:\n  allow_domains: [b≠cher.example]\n"))
	if err == nil || !strings.Contains(err.Error(), "policy.allow_domains") || !strings.Contains(err.Error(), "'≠'") {
		t.Errorf("invalid allow_domains entry: error %v, want one naming the key and '≠'", err)
	}
}

// allow_domains written in U-labels lifts a DMARC reject for the A-label
// From, and the other way round.
func TestCheckEAIAllowDomains(t *testing.T) {
	t.Parallel()
	zone, key := eaiFixture(t)
	for _, tc := range []struct{ allow, from string }{
		{"bücher.example", "info@" + eaiALabel},
		{eaiALabel, "info@BÜCHER.example"},
	} {
		cfg := writeConfig(t, "authserv_id: mx.check.test\npolicy:\n  allow_domains: ["+tc.allow+"]\n")
		code, out, errOut := runCmd("check", "--config", cfg, "--zone", zone, "--client-ip", "198.51.100.7",
			"--helo", "relay.example.net", "--mail-from", "<a@lists.example.net>", "--format", "json", eaiMessage(t, key, tc.from, ""))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var rep struct {
			Action, Override string
			DMARC            struct{ Result string } `json:"dmarc"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.DMARC.Result != "fail" || rep.Action != "accept" || !strings.Contains(rep.Override, "allow_domains") {
			t.Errorf("allow %q, from %q: dmarc %s, action %s, override %q; want fail, accept by allow_domains", tc.allow, tc.from, rep.DMARC.Result, rep.Action, rep.Override)
		}
	}
}

// arc.seal.domain may be written in U-labels; the seal carries the
// A-labels, valid in any message.
func TestCheckEAISealDomain(t *testing.T) {
	t.Parallel()
	zone, key := eaiFixture(t)
	keyPath := filepath.Join(t.TempDir(), "seal.key")
	if code, _, e := runCmd("keygen", "--algorithm", "ed25519", "--domain", eaiALabel, "--selector", "arc", "--out", keyPath); code != 0 {
		t.Fatalf("keygen: %s", e)
	}
	cfg := writeConfig(t, "authserv_id: mx.check.test\narc:\n  seal: {domain: Bücher.example, selector: arc, key_file: "+keyPath+"}\n")
	code, out, errOut := runCmd("check", "--config", cfg, "--zone", zone, "--client-ip", "192.0.2.5",
		"--helo", "mx.bücher.example", "--mail-from", "<info@bücher.example>", "--format", "message", eaiMessage(t, key, "info@bücher.example", ""))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	out = strings.NewReplacer("\r\n\t", " ", "\r\n ", " ").Replace(out) // unfold
	for _, h := range []string{"ARC-Seal: ", "ARC-Message-Signature: "} {
		i := strings.Index(out, h)
		if i < 0 {
			t.Fatalf("no %q in\n%s", h, out)
		}
		field := out[i:]
		field = field[:strings.Index(field, "\r\n")]
		if !strings.Contains(strings.ReplaceAll(field, " ", ""), "d="+eaiALabel+";") {
			t.Errorf("%s: want d=%s in %q", h, eaiALabel, field)
		}
	}
}
