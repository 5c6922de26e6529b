package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/engine"
	"github.com/authmilter/authmilter/internal/message"
)

// The three files are written here in the format their man pages describe
// (opendkim.conf(5), opendmarc.conf(5), openarc.conf(5)): "Name value"
// lines, '#' comments anywhere on a line, Booleans by their first byte,
// data sets as files or comma-separated lists, Include.
func migrateFixture(t *testing.T, rejectFailures string) (dir string, files map[string]string) {
	t.Helper()
	dir = t.TempDir()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPath := filepath.Join(dir, "arc.key")
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("arc.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	// The DKIM signing key too, so that a build with signing (#21) loads it.
	write("dkim.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	write("TrustedHosts", "# networks whose mail is signed, not verified\n127.0.0.1\n::1\n192.0.2.0/26   # the office\nsmtp.example.org\n")
	write("whitelist", "partner.example\n")
	write("common.conf", "Syslog\t\tYes\nUMask  002\n")
	files = map[string]string{
		"opendkim": write("opendkim.conf", `# OpenDKIM
Include   common.conf
Mode      sv
Domain    example.org
Selector  mail
KeyFile   `+filepath.Join(dir, "dkim.key")+`
Socket    inet:8891@localhost
InternalHosts `+filepath.Join(dir, "TrustedHosts")+`
Canonicalization relaxed/simple
On-BadSignature reject
`),
		"opendmarc": write("opendmarc.conf", `AuthservID          mx.example.org
Socket              inet:8893@localhost
RejectFailures      `+rejectFailures+`
HoldQuarantinedMessages  True
IgnoreHosts         `+filepath.Join(dir, "TrustedHosts")+`
IgnoreMailFrom      lists.example.net,bounces.example.com
IgnoreMailTo        postmaster@example.org, abuse@
RequiredHeaders     y
RejectMultiValueFrom 1
SPFSelfValidate     true
TrustedAuthservIDs  mx.example.org
DomainWhitelistFile `+filepath.Join(dir, "whitelist")+`
FailureReports      false
HistoryFile         /run/opendmarc/opendmarc.dat
PublicSuffixList    /usr/share/publicsuffix/public_suffix_list.dat
UserID              opendmarc:opendmarc # comment after the value
`),
		"openarc": write("openarc.conf", `Mode  sv
Domain        example.org
Selector      arc
KeyFile       `+keyPath+`
FinalReceiver false
Canonicalization relaxed/relaxed
`),
	}
	return dir, files
}

// TestMigrate: every setting of the three files is either translated
// (with a comment naming it) or listed with its reason; the result loads
// with serve's own loader; and the messages judged by the engine built
// from it get the verdicts the original settings gave them.
func TestMigrate(t *testing.T) {
	t.Parallel()
	dir, files := migrateFixture(t, "true")
	code, out, errOut := runCmd("migrate", "--opendkim", files["opendkim"], "--opendmarc", files["opendmarc"], "--openarc", files["openarc"])
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	t.Logf("migrated:\n%s", out)
	// Every line of every file (Include followed) is named in the output.
	for _, name := range []string{"opendkim.conf", "opendmarc.conf", "openarc.conf", "common.conf"} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(strings.SplitN(line, "#", 2)[0])
			if line == "" || strings.HasPrefix(line, "Include") {
				continue
			}
			key := strings.Fields(line)[0]
			if !regexp.MustCompile(`(?m)^\s*#.*` + regexp.QuoteMeta(name) + `:` + itoa(i+1) + ` ` + key + `\b`).MatchString(out) {
				t.Errorf("%s:%d %s is neither translated nor listed", name, i+1, key)
			}
		}
	}
	for _, want := range []string{
		"TrustedAuthservIDs mx.example.org: authmilter always evaluates SPF itself",
		"SPFSelfValidate true: authmilter always evaluates SPF itself",
		"FailureReports false: authmilter sends no failure (ruf) reports",
		"On-BadSignature reject: authmilter never rejects for DKIM alone",
		"UserID opendmarc:opendmarc: the service manager's job",
		"InternalHosts: smtp.example.org: authmilter matches networks only",
		"Socket inet:8893@localhost: conflicts with opendkim.conf:7 Socket inet:8891@localhost",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Signing (#21) and reports (#20) come out live on a build that has
	// them, commented out otherwise.
	for _, key := range []string{"dkim.sign", "reports"} {
		live := knownKey(strings.Split(key, ".")...)
		if note := "# " + key + " is not known to this build of authmilter yet"; strings.Contains(out, note) == live {
			t.Errorf("%s known %v, output:\n%s", key, live, out)
		}
	}
	path := filepath.Join(dir, "authmilter.yaml")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("serve's loader refuses the result: %v", err)
	}
	if cfg.Listen != "inet:8891@localhost" || cfg.AuthservID != "mx.example.org" || !*cfg.Policy.Enforce ||
		cfg.Policy.Quarantine != "hold" || cfg.Policy.FromChecks != "reject" || cfg.DMARC.OrgDomain != "psl" ||
		!slices.Equal(cfg.Policy.InternalNetworks, []string{"127.0.0.1/32", "::1/128", "192.0.2.0/26"}) ||
		!slices.Equal(cfg.Policy.IgnoreMailFrom, []string{"lists.example.net", "bounces.example.com"}) ||
		!slices.Equal(cfg.Policy.IgnoreRcpt, []string{"postmaster@example.org", "abuse@"}) ||
		!slices.Equal(cfg.Policy.AllowDomains, []string{"partner.example"}) ||
		cfg.ARC.Seal.Domain != "example.org" || cfg.ARC.Seal.Selector != "arc" || cfg.ARC.Seal.KeyFile == "" {
		t.Fatalf("translated config %+v", cfg)
	}

	// The same messages, judged as the original settings say and by the
	// engine built from the translation.
	zone := &dnstest.Resolver{TXT: map[string][]string{
		"example.com":                {"v=spf1 -all"},
		"_dmarc.example.com":         {"v=DMARC1; p=reject"},
		"quarantined.example":        {"v=spf1 -all"},
		"_dmarc.quarantined.example": {"v=DMARC1; p=quarantine"},
		"partner.example":            {"v=spf1 -all"},
		"_dmarc.partner.example":     {"v=DMARC1; p=reject"},
	}}
	e, err := newEngine(cfg, zone, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		ip, from string
		rcpt     string
		header   string
		action   engine.Action
	}{
		{"RejectFailures: a p=reject failure is rejected", "198.51.100.1", "a@example.com", "bob@example.org", "From: a@example.com\r\n", engine.ActionReject},
		{"HoldQuarantinedMessages: a p=quarantine failure is held", "198.51.100.1", "a@quarantined.example", "bob@example.org", "From: a@quarantined.example\r\n", engine.ActionQuarantine},
		{"IgnoreMailTo: mail for postmaster is not rejected", "198.51.100.1", "a@example.com", "postmaster@example.org", "From: a@example.com\r\n", engine.ActionAccept},
		{"IgnoreMailFrom: that sender's mail is not rejected", "198.51.100.1", "x@lists.example.net", "bob@example.org", "From: a@example.com\r\n", engine.ActionAccept},
		{"DomainWhitelistFile: that From domain is not rejected", "198.51.100.1", "a@partner.example", "bob@example.org", "From: a@partner.example\r\n", engine.ActionAccept},
		{"IgnoreHosts/InternalHosts: not judged", "192.0.2.5", "a@example.com", "bob@example.org", "From: a@example.com\r\n", engine.ActionAccept},
		{"RequiredHeaders: two From fields are rejected", "198.51.100.1", "a@partner.example", "bob@example.org", "From: a@partner.example\r\nFrom: b@partner.example\r\n", engine.ActionReject},
		{"RejectMultiValueFrom: two addresses are rejected", "198.51.100.1", "a@partner.example", "bob@example.org", "From: a@partner.example, b@other.example\r\n", engine.ActionReject},
	} {
		v := judge(t, e, tc.ip, tc.from, tc.rcpt, tc.header+"Subject: x\r\n\r\nHi.\r\n")
		if v.Action != tc.action {
			t.Errorf("%s: action %s (%s %s), want %s", tc.name, v.Action, v.Reply, v.Override, tc.action)
		}
		if tc.name == "IgnoreHosts/InternalHosts: not judged" && !v.Internal {
			t.Errorf("%s: judged", tc.name)
		}
		if v.Action == engine.ActionAccept && !v.Internal && !v.Sealed {
			t.Errorf("%s: not ARC-sealed (OpenARC Mode sv): %v", tc.name, v.SealErr)
		}
	}

	// OpenDMARC's defaults: without RejectFailures and
	// HoldQuarantinedMessages, failures are only noted.
	bare := filepath.Join(dir, "bare.conf")
	os.WriteFile(bare, []byte("AuthservID mx.example.org\n"), 0o600)
	_, outBare, _ := runCmd("migrate", "--opendmarc", bare)
	cfgBare, err := ParseConfig([]byte(outBare), "bare.yaml")
	if err != nil || *cfgBare.Policy.Enforce || cfgBare.Policy.Quarantine != "header" {
		t.Errorf("OpenDMARC defaults not carried over (%v):\n%s", err, outBare)
	}

	// RejectFailures false: failures are only noted.
	dir2, files2 := migrateFixture(t, "false")
	_, out2, _ := runCmd("migrate", "--opendmarc", files2["opendmarc"])
	path2 := filepath.Join(dir2, "authmilter.yaml")
	os.WriteFile(path2, []byte(out2), 0o600)
	cfg2, err := LoadConfig(path2)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := newEngine(cfg2, zone, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := judge(t, e2, "198.51.100.1", "a@example.com", "bob@example.org", "From: a@example.com\r\n\r\nHi.\r\n"); v.Action != engine.ActionAccept || !strings.Contains(v.AuthResults, "dmarc=fail") {
		t.Errorf("RejectFailures false: action %s, A-R %s", v.Action, v.AuthResults)
	}
}

func judge(t *testing.T, e *engine.Engine, ip, mailFrom, rcpt, msg string) *engine.Verdict {
	t.Helper()
	fields, err := message.ReadHeader(bufioReader(msg), message.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ev := e.Begin(context.Background(), engine.Envelope{ClientIP: netip.MustParseAddr(ip), HELO: "client.example", MailFrom: mailFrom, Rcpts: []string{rcpt}})
	for _, f := range fields {
		ev.Header(f)
	}
	ev.EndOfHeaders()
	ev.Body([]byte("Hi.\r\n"))
	return ev.End()
}

func TestMigrateUsage(t *testing.T) {
	t.Parallel()
	if code, _, errOut := runCmd("migrate"); code != 2 || !strings.Contains(errOut, "give at least one") {
		t.Errorf("no file: exit %d %s", code, errOut)
	}
	if code, _, errOut := runCmd("migrate", "--opendkim", filepath.Join(t.TempDir(), "none.conf")); code != 1 || !strings.Contains(errOut, "none.conf") {
		t.Errorf("missing file: exit %d %s", code, errOut)
	}
	dir := t.TempDir()
	loop := filepath.Join(dir, "loop.conf")
	os.WriteFile(loop, []byte("Include loop.conf\n"), 0o600)
	if code, _, errOut := runCmd("migrate", "--openarc", loop); code != 1 || !strings.Contains(errOut, "nested") {
		t.Errorf("Include loop: exit %d %s", code, errOut)
	}
}

func TestMigrateSocket(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"inet:8891@localhost", "listen: inet:8891@localhost"},
		{"inet:8891@[127.0.0.1]", "listen: inet:8891@[127.0.0.1]"},
		{"inet6:8891@[::1]", "listen: inet6:8891@[::1]"},
		{"inet:8891", "listen: inet:8891@0.0.0.0"},
		{"local:/run/opendkim/opendkim.sock", "listen: local:/run/opendkim/opendkim.sock"},
		{"bogus", "Socket bogus: listen \"bogus\""},
	} {
		p := filepath.Join(t.TempDir(), "opendkim.conf")
		os.WriteFile(p, []byte("Socket "+tc.in+"\nMode v\n"), 0o600)
		code, out, errOut := runCmd("migrate", "--opendkim", p)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("Socket %s: exit %d, want %q in:\n%s%s", tc.in, code, tc.want, out, errOut)
		}
		if strings.HasPrefix(tc.want, "listen:") {
			if _, err := ParseConfig([]byte(out), "out.yaml"); err != nil {
				t.Errorf("Socket %s: %v", tc.in, err)
			}
		}
	}
}

func TestConfBool(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{"yes": true, "True": true, "1": true, "y": true, "no": false, "False": false, "0": false} {
		if got, err := confBool(v); err != nil || got != want {
			t.Errorf("confBool(%q) = %v, %v", v, got, err)
		}
	}
	if _, err := confBool("maybe"); err == nil {
		t.Error("confBool(maybe) succeeded")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
