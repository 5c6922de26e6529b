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
	"go.yaml.in/yaml/v3"
)

// checkFixture writes a zone file and a DKIM-signed message for the check
// command, and returns their paths.
func checkFixture(t *testing.T) (zone, signed, unsigned string) {
	t.Helper()
	dir := t.TempDir()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	pub := base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	zone = filepath.Join(dir, "test.zone")
	zoneText := `$ORIGIN example.com.
$TTL 300
@               SOA   ns hostmaster 1 3600 600 86400 300
@               TXT   "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc          TXT   "v=DMARC1; p=reject"
sel._domainkey  TXT   "v=DKIM1; k=ed25519; p=` + pub + `"
`
	if err := os.WriteFile(zone, []byte(zoneText), 0o644); err != nil {
		t.Fatal(err)
	}
	msg := "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: check\r\n" +
		"Authentication-Results: mx.check.test; dkim=pass\r\n\r\nHello.\r\n"
	var out bytes.Buffer
	if err := msgauthdkim.Sign(&out, strings.NewReader(msg), &msgauthdkim.SignOptions{
		Domain: "example.com", Selector: "sel", Signer: crypto.Signer(key),
		HeaderKeys: []string{"From", "To", "Subject"},
	}); err != nil {
		t.Fatal(err)
	}
	signed = filepath.Join(dir, "signed.eml")
	unsigned = filepath.Join(dir, "unsigned.eml")
	// Stored with LF line ends, as most files are: check converts.
	if err := os.WriteFile(signed, bytes.ReplaceAll(out.Bytes(), []byte("\r\n"), []byte("\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unsigned, []byte(msg), 0o644); err != nil {
		t.Fatal(err)
	}
	return zone, signed, unsigned
}

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "authmilter.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckJSON(t *testing.T) {
	t.Parallel()
	zone, signed, unsigned := checkFixture(t)
	cfg := writeConfig(t, "authserv_id: mx.check.test\n")
	tests := []struct {
		name, file, ip, mailFrom string
		spf, dkim, dmarc         string
		action                   string
		reply                    string
	}{
		{"forwarded, DKIM passes", signed, "198.51.100.1", "list@lists.example.net", "none", "pass", "pass", "accept", ""},
		{"direct, SPF passes", unsigned, "192.0.2.1", "alice@example.com", "pass", "", "pass", "accept", ""},
		{"spoofed", unsigned, "198.51.100.1", "alice@example.com", "fail", "", "fail", "reject", "550 5.7.1 Message rejected: DMARC policy of example.com is reject"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCmd("check", "--config", cfg, "--zone", zone, "--client-ip", tc.ip,
				"--helo", "mail.example.net", "--mail-from", tc.mailFrom, "--rcpt", "bob@example.net", "--format", "json", tc.file)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var rep struct {
				SPF struct {
					Result string `json:"result"`
				} `json:"spf"`
				DKIM []struct {
					Result, Domain, Selector string
				} `json:"dkim"`
				DMARC struct {
					Result, Policy, Disposition string
				} `json:"dmarc"`
				ARC struct {
					Result    string `json:"result"`
					Instances int    `json:"instances"`
				} `json:"arc"`
				AR     string `json:"authentication_results"`
				Action string `json:"action"`
				Reply  string `json:"reply"`
				Forged int    `json:"forged_authentication_results_removed"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if rep.SPF.Result != tc.spf || rep.DMARC.Result != tc.dmarc || rep.Action != tc.action || !strings.HasPrefix(rep.Reply, tc.reply) {
				t.Fatalf("got spf %s dmarc %s action %s reply %q\n%s", rep.SPF.Result, rep.DMARC.Result, rep.Action, rep.Reply, out)
			}
			if tc.dkim != "" && (len(rep.DKIM) != 1 || rep.DKIM[0].Result != tc.dkim || rep.DKIM[0].Domain != "example.com" || rep.DKIM[0].Selector != "sel") {
				t.Fatalf("dkim %+v", rep.DKIM)
			}
			if rep.DMARC.Policy != "reject" || rep.ARC.Result != "none" || rep.Forged != 1 {
				t.Errorf("dmarc policy %q, arc %q, forged removed %d", rep.DMARC.Policy, rep.ARC.Result, rep.Forged)
			}
			if !strings.HasPrefix(rep.AR, "mx.check.test;") {
				t.Errorf("authentication_results %q", rep.AR)
			}
		})
	}
}

func TestCheckMessageAndText(t *testing.T) {
	t.Parallel()
	zone, signed, _ := checkFixture(t)
	cfg := writeConfig(t, "authserv_id: mx.check.test\n")
	code, out, errOut := runCmd("check", "--config", cfg, "--zone", zone, "--client-ip", "198.51.100.1",
		"--helo", "mail.example.net", "--mail-from", "<>", "--format", "message", signed)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "Authentication-Results: mx.check.test;") || strings.Count(out, "Authentication-Results:") != 1 {
		t.Fatalf("message output:\n%s", out)
	}
	if !strings.Contains(out, "\r\n\r\nHello.\r\n") {
		t.Errorf("body lost or not CRLF:\n%q", out)
	}
	code, out, _ = runCmd("check", "--config", cfg, "--zone", zone, "--client-ip", "198.51.100.1",
		"--helo", "mail.example.net", "--mail-from", "<>", signed)
	if code != 0 || !strings.Contains(out, "dkim:") || !strings.Contains(out, "action:") {
		t.Fatalf("text output (exit %d):\n%s", code, out)
	}
}

func TestCheckSealsWithConfiguredKey(t *testing.T) {
	t.Parallel()
	zone, signed, _ := checkFixture(t)
	keyPath := filepath.Join(t.TempDir(), "seal.key")
	if code, _, e := runCmd("keygen", "--algorithm", "ed25519", "--domain", "example.com", "--selector", "arc", "--out", keyPath); code != 0 {
		t.Fatalf("keygen: %s", e)
	}
	cfg := writeConfig(t, "authserv_id: mx.check.test\narc:\n  seal: {domain: example.com, selector: arc, key_file: "+keyPath+"}\n")
	code, out, errOut := runCmd("check", "--config", cfg, "--zone", zone, "--client-ip", "198.51.100.1",
		"--helo", "mail.example.net", "--mail-from", "list@lists.example.net", "--format", "message", signed)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, h := range []string{"ARC-Seal: ", "ARC-Message-Signature: ", "ARC-Authentication-Results: i=1; mx.check.test;"} {
		if !strings.Contains(out, h) {
			t.Errorf("no %q in\n%s", h, out)
		}
	}
}

func TestCheckUsageErrors(t *testing.T) {
	t.Parallel()
	zone, signed, _ := checkFixture(t)
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"missing client ip", []string{"check", "--helo", "h", "--mail-from", "a@b", signed}, 2, "--client-ip is required"},
		{"bad ip", []string{"check", "--client-ip", "nope", "--helo", "h", "--mail-from", "a@b", signed}, 2, "not an IP address"},
		{"bad format", []string{"check", "--client-ip", "192.0.2.1", "--helo", "h", "--mail-from", "a@b", "--format", "xml", signed}, 2, "--format"},
		{"missing file", []string{"check", "--zone", zone, "--client-ip", "192.0.2.1", "--helo", "h", "--mail-from", "a@b", filepath.Join(t.TempDir(), "none.eml")}, 1, "no such file"},
		{"bad zone", []string{"check", "--zone", signed, "--client-ip", "192.0.2.1", "--helo", "h", "--mail-from", "a@b", signed}, 1, "signed.eml"},
		{"bad config key", []string{"check", "--config", writeConfig(t, "polcy:\n  enforce: false\n"), "--client-ip", "192.0.2.1", "--helo", "h", "--mail-from", "a@b", signed}, 1, "authmilter.yaml:1"},
	}
	for _, tc := range tests {
		code, _, errOut := runCmd(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tc.name, code, errOut, tc.code, tc.msg)
		}
	}
}

func TestExampleConfigLoads(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(filepath.Join("..", "..", "configs", "authmilter.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Every value is the default (authserv_id, commented out, is the host
	// name). Compared as YAML so that [] and an absent list are alike.
	got, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want, err := yaml.Marshal(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("configs/authmilter.yaml departs from the defaults it documents:\n%s\nwant\n%s", got, want)
	}
}

// A zone file whose names are all absolute needs no $ORIGIN or SOA.
func TestCheckZoneAbsoluteNames(t *testing.T) {
	t.Parallel()
	zone := filepath.Join(t.TempDir(), "abs.zone")
	text := "example.com. TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n_dmarc.example.com. TXT \"v=DMARC1; p=reject\"\n"
	if err := os.WriteFile(zone, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	msg := filepath.Join(t.TempDir(), "m.eml")
	if err := os.WriteFile(msg, []byte("From: a@example.com\r\nSubject: x\r\n\r\nHi.\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd("check", "--zone", zone, "--client-ip", "192.0.2.1", "--helo", "mail.example.com",
		"--mail-from", "a@example.com", "--format", "json", msg)
	if code != 0 || !strings.Contains(out, `"result": "pass"`) {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
}
