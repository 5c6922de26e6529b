package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/dkim"
)

// TestCheckAuthUserSigns: check --auth-user judges the message as an
// authenticated submission: it is signed with the configured key (the
// signed message verifies), not judged; without --auth-user, from outside,
// the same message is judged and not signed.
func TestCheckAuthUserSigns(t *testing.T) {
	zone, _, unsigned := checkFixture(t)
	dir := t.TempDir()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := filepath.Join(dir, "ed.key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "authmilter.yaml")
	if err := os.WriteFile(cfg, []byte("authserv_id: mx.check.test\ndkim:\n  sign:\n    keys:\n      - {domain: example.com, selector: out, key_file: "+keyFile+"}\n    expire: 24h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"check", "--config", cfg, "--zone", zone, "--client-ip", "203.0.113.9", "--helo", "laptop", "--mail-from", "alice@example.com", "--rcpt", "bob@example.net"}

	code, out, errOut := runCmd(append(append([]string{}, args...), "--auth-user", "alice", "--format", "json", unsigned)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Internal bool `json:"internal"`
		Signed   []struct {
			Domain, Selector, Algorithm string
		} `json:"signed"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !rep.Internal || len(rep.Signed) != 1 || rep.Signed[0].Domain != "example.com" || rep.Signed[0].Selector != "out" || rep.Signed[0].Algorithm != "ed25519-sha256" {
		t.Fatalf("report: %s", out)
	}

	code, msg, errOut := runCmd(append(append([]string{}, args...), "--auth-user", "alice", "--format", "message", unsigned)...)
	if code != 0 || !strings.HasPrefix(msg, "DKIM-Signature: v=1; a=ed25519-sha256;") {
		t.Fatalf("exit %d: %s\n%s", code, errOut, msg)
	}
	r := &dnstest.Resolver{TXT: map[string][]string{"out._domainkey.example.com": {"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sigs, err := dkim.Verify(ctx, r, strings.NewReader(msg), nil)
	if err != nil {
		t.Fatal(err)
	}
	passed := false
	for _, s := range sigs {
		passed = passed || s.Selector == "out" && s.Status == verify.StatusPass
	}
	if !passed {
		t.Errorf("signed message does not verify: %+v", sigs)
	}

	code, text, _ := runCmd(append(append([]string{}, args...), "--auth-user", "alice", unsigned)...)
	if code != 0 || !strings.Contains(text, "signed:  d=example.com s=out a=ed25519-sha256") {
		t.Errorf("text output:\n%s", text)
	}

	// Judged mail is never signed.
	code, out, errOut = runCmd(append(append([]string{}, args...), "--format", "json", unsigned)...)
	if code != 0 && code != 1 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	rep.Signed, rep.Internal = nil, false
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Internal || len(rep.Signed) != 0 {
		t.Errorf("judged mail signed: %s", out)
	}
}

func TestKeygenNamesConfig(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCmd("keygen", "--algorithm", "ed25519", "--domain", "example.com", "--selector", "ed1", "--out", filepath.Join(dir, "k.pem"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"dkim:", "sign:", "keys:", "- {domain: example.com, selector: ed1, key_file: " + filepath.Join(dir, "k.pem") + "}"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("keygen output lacks %q:\n%s", want, errOut)
		}
	}
}
