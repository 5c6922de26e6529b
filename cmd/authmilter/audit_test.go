package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/audit"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixedDKIMRecord is an Ed25519 key record that is the same on every run,
// for golden files.
func fixedDKIMRecord() string {
	pub := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
}

// auditZones are the zones of the golden tests: one domain set up as the
// guides say, one with a finding in every check.
var auditZones = map[string]string{
	"good": `example.com.                 TXT "v=spf1 mx ip4:192.0.2.0/24 -all"
example.com.                 MX  10 mx.example.com.
mx.example.com.              A   192.0.2.25
_dmarc.example.com.          TXT "v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@example.com"
sel._domainkey.example.com.  TXT "` + fixedDKIMRecord() + `"
_smtp._tls.example.com.      TXT "v=TLSRPTv1; rua=mailto:tls@example.com"
default._bimi.example.com.   TXT "v=BIMI1; l=https://example.com/logo.svg; a=https://example.com/vmc.pem"
`,
	"broken": `example.org.                 TXT "v=spf1 ptr a:gone.example.org +all"
example.org.                 MX  0 .
_dmarc.example.org.          TXT "v=DMARC1; p=none; pct=20; ri=86400; rua=mailto:reports@dmarc.example.net; foo=bar"
_smtp._tls.example.org.      TXT "v=TLSRPTv1; rua=http://tls.example.org/"
default._bimi.example.org.   TXT "v=BIMI1; l=https://example.org/logo.svg"
`,
}

func writeAuditZone(t *testing.T, names ...string) string {
	t.Helper()
	var text strings.Builder
	for _, n := range names {
		text.WriteString(auditZones[n])
	}
	p := filepath.Join(t.TempDir(), "audit.zone")
	if err := os.WriteFile(p, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "audit", name)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -run %s -update rewrites it):\n%s", path, t.Name(), got)
	}
}

func TestAuditJSONGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		zones   []string
		args    []string
		code    int
		failing string
	}{
		{"good.json", []string{"good"}, []string{"--dkim-selector", "sel", "example.com"}, 0, ""},
		{"broken.json", []string{"broken"}, []string{"--dkim-selector", "sel", "example.org"}, 1, "audit: checks failed: 5"},
		{"two.json", []string{"good", "broken"}, []string{"example.com", "example.org"}, 1, "audit: checks failed: 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			zone := writeAuditZone(t, tc.zones...)
			args := append([]string{"audit", "--zone", zone, "--format", "json"}, tc.args...)
			code, out, errOut := runCmd(args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d: %s", code, tc.code, errOut)
			}
			if tc.failing != "" && !strings.Contains(errOut, tc.failing) {
				t.Errorf("stderr %q, want %q", errOut, tc.failing)
			}
			if strings.Contains(out, zone) {
				t.Errorf("output names the test's zone file:\n%s", out)
			}
			// One domain is an object, several an array.
			var v any
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if _, isArray := v.([]any); isArray != (len(tc.zones) > 1) {
				t.Errorf("JSON %T for %d domains", v, len(tc.zones))
			}
			golden(t, tc.name, out)
		})
	}
}

func TestAuditText(t *testing.T) {
	t.Parallel()
	zone := writeAuditZone(t, "broken")
	code, out, _ := runCmd("audit", "--zone", zone, "example.org")
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{
		"example.org\n",
		"  fail  spf.all          +all: every host may send as example.org — fix: Replace it with",
		"  warn  spf.ptr          ptr used",
		"  warn  dmarc.policy     p=none: monitoring only",
		"  info  mx               null MX (RFC 7505)",
		"  info  dkim.key         no selector given",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("colour written to a pipe:\n%q", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "  pass  ") && strings.Contains(line, "fix:") {
			t.Errorf("a pass with a fix: %s", line)
		}
		if (strings.HasPrefix(line, "  fail  ") || strings.HasPrefix(line, "  warn  ")) && !strings.Contains(line, " — fix: ") {
			t.Errorf("no fix: %s", line)
		}
	}
}

// Colour only on a terminal: escape codes per status when asked for.
func TestAuditTextColour(t *testing.T) {
	t.Parallel()
	reps := []audit.Report{{Domain: "example.com", Checks: []audit.Check{
		{ID: "spf.all", Status: audit.StatusPass, Detail: "-all"},
		{ID: "mx", Status: audit.StatusFail, Detail: "x", Fix: "y"},
	}}}
	var plain, colour strings.Builder
	if err := writeAuditText(&plain, reps, false); err != nil {
		t.Fatal(err)
	}
	if err := writeAuditText(&colour, reps, true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b") {
		t.Errorf("plain output has escape codes: %q", plain.String())
	}
	for _, want := range []string{"\x1b[32mpass\x1b[0m", "\x1b[31mfail\x1b[0m"} {
		if !strings.Contains(colour.String(), want) {
			t.Errorf("no %q in %q", want, colour.String())
		}
	}
	if isTerminal(&plain) {
		t.Error("a strings.Builder is a terminal")
	}
}

// A record's text is shown as found, but never its control characters: an
// escape sequence in a TXT record must not reach the terminal.
func TestAuditTextNoControlCharacters(t *testing.T) {
	t.Parallel()
	reps := []audit.Report{{Domain: "example.com", Checks: []audit.Check{
		{ID: "dmarc.rua", Status: audit.StatusWarn, Detail: "mailto:a@b\x1b]0;owned\x07\x1b[2J: not an address\r\nnext", Fix: "fix \x9b1m it"},
	}}}
	for _, colour := range []bool{false, true} {
		var out strings.Builder
		if err := writeAuditText(&out, reps, colour); err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(strings.ReplaceAll(out.String(), "\x1b[33m", ""), "\x1b[0m", "")
		if strings.ContainsAny(text, "\x1b\x07\r\u009b") || strings.Count(text, "\n") != 3 {
			t.Errorf("colour %v: control characters reach the terminal: %q", colour, out.String())
		}
	}
}

func TestAuditUsage(t *testing.T) {
	t.Parallel()
	zone := writeAuditZone(t, "good")
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"no domain", []string{"--zone", zone}, "give at least one domain"},
		{"bad format", []string{"--zone", zone, "--format", "xml", "example.com"}, `--format "xml"`},
		{"unknown flag", []string{"--bogus", "example.com"}, "flag provided but not defined"},
		{"missing zone", []string{"--zone", filepath.Join(t.TempDir(), "none.zone"), "example.com"}, "none.zone"},
		{"bad CA file", []string{"--zone", zone, "--ca-file", bad, "example.com"}, "no PEM certificate"},
		{"not a domain", []string{"--zone", zone, "example.com", "mail@example.com"}, `"mail@example.com": label "mail@example" contains '@'`},
		{"one label", []string{"--zone", zone, "localhost"}, "at least two labels"},
		{"bad timeout", []string{"--zone", zone, "--timeout", "0s", "example.com"}, "--timeout"},
		{"missing config", []string{"--config", filepath.Join(t.TempDir(), "none.yaml"), "example.com"}, "none.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := runCmd(append([]string{"audit"}, tc.args...)...)
			if code != 2 || !strings.Contains(errOut, tc.err) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tc.err)
			}
		})
	}
	if code, _, errOut := runCmd("help"); code != 0 || !strings.Contains(errOut, "authmilter audit [--config FILE]") {
		t.Errorf("usage does not list audit (exit %d):\n%s", code, errOut)
	}
}

// With --config, the ARC sealing key is compared with the one published
// under its selector (dkim.key_match).
func TestAuditConfigKeyMatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "arc.key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "arc:\n  seal:\n    domain: example.com\n    selector: arc\n    key_file: "+keyFile+"\n")
	for _, tc := range []struct {
		name      string
		published ed25519.PublicKey
		code      int
		status    string
	}{
		{"published", pub, 0, "pass"},
		{"another key published", other, 1, "fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			zone := filepath.Join(t.TempDir(), "z.zone")
			text := auditZones["good"] + `arc._domainkey.example.com. TXT "v=DKIM1; k=ed25519; p=` + base64.StdEncoding.EncodeToString(tc.published) + "\"\n"
			if err := os.WriteFile(zone, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCmd("audit", "--config", cfg, "--zone", zone, "--format", "json", "example.com")
			if code != tc.code {
				t.Errorf("exit %d, want %d: %s", code, tc.code, errOut)
			}
			var rep struct {
				Checks []struct{ ID, Status, Detail string }
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			found := false
			for _, c := range rep.Checks {
				if c.ID == "dkim.key_match" {
					found = true
					if c.Status != tc.status || !strings.Contains(c.Detail, "arc.seal.key_file") {
						t.Errorf("dkim.key_match %s: %s", c.Status, c.Detail)
					}
				}
			}
			if !found {
				t.Errorf("no dkim.key_match:\n%s", out)
			}
		})
	}
}

// With --config, the DKIM signing key that would sign the audited domain's
// mail is compared with the one published under its selector; a key of
// another domain is not.
func TestAuditConfigSigningKeyMatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "dkim.key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "dkim:\n  sign:\n    keys:\n      - {domain: example.com, selector: s2026, key_file: "+keyFile+"}\n      - {domain: example.net, selector: other, key_file: "+keyFile+"}\n")
	for _, tc := range []struct {
		name      string
		published ed25519.PublicKey
		code      int
		status    string
	}{
		{"published", pub, 0, "pass"},
		{"another key published", other, 1, "fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			zone := filepath.Join(t.TempDir(), "z.zone")
			text := auditZones["good"] + `s2026._domainkey.example.com. TXT "v=DKIM1; k=ed25519; p=` + base64.StdEncoding.EncodeToString(tc.published) + "\"\n"
			if err := os.WriteFile(zone, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCmd("audit", "--config", cfg, "--zone", zone, "--format", "json", "example.com")
			if code != tc.code {
				t.Errorf("exit %d, want %d: %s", code, tc.code, errOut)
			}
			var rep struct {
				Checks []struct{ ID, Status, Detail string }
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, c := range rep.Checks {
				if c.ID == "dkim.key_match" {
					n++
					if c.Status != tc.status || !strings.Contains(c.Detail, "s2026") || strings.Contains(c.Detail, "other") {
						t.Errorf("dkim.key_match %s: %s", c.Status, c.Detail)
					}
				}
			}
			if n != 1 {
				t.Errorf("%d dkim.key_match checks, want 1:\n%s", n, out)
			}
		})
	}
}
