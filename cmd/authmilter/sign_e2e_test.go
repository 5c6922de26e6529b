package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/internal/testsupport/interop"
	"github.com/authmilter/authmilter/internal/testsupport/postfixtest"
	"github.com/authmilter/authmilter/internal/testsupport/smtptest"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/dkim"
)

// TestPostfixSASLSubmissionSigned: a submission authenticated with SMTP
// AUTH (Cyrus SASL, sasldb) through a real Postfix is DKIM-signed by the
// daemon and not judged; the same message relayed unauthenticated from
// outside is judged and not signed.
func TestPostfixSASLSubmissionSigned(t *testing.T) {
	saslpasswd := interop.Need(t, "saslpasswd2", "sasl2-bin")
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/sasl2/libplain.so"); err != nil {
		if matches, _ := filepath.Glob("/usr/lib/*/sasl2/libplain.so"); len(matches) == 0 {
			interop.Need(t, "cyrus-sasl-plain-mechanism", "libsasl2-modules")
		}
	}
	x := newE2E(t)
	// The signing key, published for our verifier.
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := filepath.Join(filepath.Dir(x.cfgPath), "out.key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	x.dns.TXT["out._domainkey.example.com"] = []string{"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}
	cfg, _ := os.ReadFile(x.cfgPath)
	cfg = append(cfg, []byte("dkim:\n  sign:\n    keys:\n      - {domain: example.com, selector: out, key_file: "+keyFile+"}\n")...)
	if err := os.WriteFile(x.cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	x.start(t, "")
	pf := postfixtest.Start(t, postfixtest.Options{Milter: "inet:" + x.addr, MilterDefaultAction: "tempfail"})

	// Cyrus SASL: a sasldb with one user, read by smtpd (which runs as
	// the postfix user: the files are world-readable test fixtures).
	// Debian's Postfix reads $config_directory/sasl/smtpd.conf (it ignores
	// cyrus_sasl_config_path, which upstream builds use).
	saslDir := filepath.Join(pf.ConfigDir(), "sasl")
	if err := os.MkdirAll(saslDir, 0o755); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(saslDir, "sasldb2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, saslpasswd, "-c", "-p", "-f", db, "-u", "postfixtest.test", "alice")
	cmd.Stdin = strings.NewReader("s3cret")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("saslpasswd2: %v\n%s", err, out)
	}
	if err := os.Chmod(db, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN\nsasldb_path: " + db + "\n"
	if err := os.WriteFile(filepath.Join(saslDir, "smtpd.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	pf.Reconfigure(t, map[string]string{
		"smtpd_sasl_auth_enable":      "yes",
		"smtpd_sasl_type":             "cyrus",
		"smtpd_sasl_path":             "smtpd",
		"cyrus_sasl_config_path":      saslDir,
		"smtpd_sasl_security_options": "noanonymous",
		"smtpd_relay_restrictions":    "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
	})

	send := func(subject string, auth bool) {
		t.Helper()
		c, err := smtptest.Dial(pf.Addr(), 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		step := func(want int, format string, args ...any) {
			t.Helper()
			if _, _, err := c.Cmd(want, format, args...); err != nil {
				t.Fatalf("%v\n%s\n%s", err, c.Transcript(), pf.LogTail(30))
			}
		}
		if _, _, err := c.Reply(); err != nil {
			t.Fatal(err)
		}
		// The client is outside (not in mynetworks, not internal for the
		// milter): only AUTH makes it a submission.
		step(220, "XCLIENT ADDR=192.0.2.10 NAME=mail.example.com HELO=mail.example.com")
		step(250, "EHLO mail.example.com")
		if auth {
			step(235, "AUTH PLAIN %s", base64.StdEncoding.EncodeToString([]byte("\x00alice@postfixtest.test\x00s3cret")))
		}
		res, err := c.Transaction(smtptest.Mail{MailFrom: "alice@example.com", Rcpts: []string{"bob@example.test"}, Data: []byte(mail("example.com", subject, ""))})
		if err != nil || res.Code != 250 {
			t.Fatalf("send %s: %+v %v\n%s\n%s", subject, res, err, c.Transcript(), x.log.String())
		}
		_, _, _ = c.Cmd(221, "QUIT")
	}
	send("submitted", true)
	send("relayed", false)
	ds := pf.WaitDelivered(t, 2, 30*time.Second)

	sub := findDelivered(t, ds, "submitted")
	if len(sub.Values("DKIM-Signature")) != 1 || len(sub.Values("Authentication-Results")) != 0 {
		t.Fatalf("submission: want one DKIM-Signature and no Authentication-Results:\n%s", sub.Raw)
	}
	sigs, err := dkim.Verify(ctx, x.dns, bytes.NewReader(sub.Raw), nil)
	if err != nil || len(sigs) != 1 || sigs[0].Status != verify.StatusPass || sigs[0].Selector != "out" {
		t.Fatalf("delivered signature: %+v %v\n%s", sigs, err, sub.Raw)
	}
	t.Logf("submitted, as delivered:\n%s", sub.Raw)

	rel := findDelivered(t, ds, "relayed")
	if len(rel.Values("DKIM-Signature")) != 0 || len(rel.Values("Authentication-Results")) != 1 {
		t.Fatalf("relayed: want no DKIM-Signature, our Authentication-Results:\n%s", rel.Raw)
	}
}
