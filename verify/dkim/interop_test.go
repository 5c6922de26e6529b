package dkim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/internal/interop"
	"github.com/authmilter/authmilter/verify"
)

// Interoperability with real signers: each signs a message with a key
// generated here; the record comes from a dnstest.Resolver. The signed
// message must pass, and fail once a signed header field or the body is
// changed.

// interopMessage is signed by the peers; it has the fields OpenDKIM's
// signer needs and a body with trailing whitespace and empty lines for the
// canonicalisations to differ on.
const interopMessage = "Received: from client.example.com by mx.example.com; Fri, 13 Mar 2026 12:00:00 +0000\r\n" +
	"From: Alice <alice@example.com>\r\n" +
	"To: Bob <bob@example.net>\r\n" +
	"Subject: Interop  \t test\r\n" +
	"Date: Fri, 13 Mar 2026 12:00:00 +0000\r\n" +
	"Message-ID: <interop@example.com>\r\n" +
	"\r\n" +
	"Hello Bob,  \r\n" +
	"\r\n" +
	"The lazy dog\t sleeps.\r\n" +
	"\r\n\r\n"

// runPeer runs a signer with msg on stdin and returns its stdout.
func runPeer(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, stderr.String())
	}
	return string(out)
}

// checkSigned verifies a peer's signed message (want for the intact
// message), then the message with the Subject (a signed field) changed and
// with the body changed (wantAltered for both).
func checkSigned(t *testing.T, signed string, key crypto.Signer, want, wantAltered verify.Result, wantReason string) {
	t.Helper()
	r := oneKey(key, "")
	s := wantOne(t, verifyString(t, r, signed, nil), want, wantReason)
	if s.Domain != "example.com" || s.Selector != "sel" || s.KeyBits == 0 {
		t.Errorf("facts: %+v", s)
	}
	for what, altered := range map[string]string{
		"signed header": strings.Replace(signed, "Subject: Interop", "Subject: Altered", 1),
		"body":          strings.Replace(signed, "lazy dog", "lazy cat", 1),
	} {
		if altered == signed {
			t.Fatalf("%s alteration did not apply", what)
		}
		sigs := verifyString(t, r, altered, nil)
		if len(sigs) != 1 || sigs[0].Result != wantAltered {
			t.Errorf("%s altered: got %+v, want %s", what, sigs, wantAltered)
		}
	}
}

const dkimpyScript = `
import sys, dkim
keyfile, alg, canon = sys.argv[1], sys.argv[2], sys.argv[3]
key = open(keyfile, 'rb').read().strip()
msg = sys.stdin.buffer.read()
sig = dkim.sign(msg, b'sel', b'example.com', key,
                canonicalize=(canon.encode(), canon.encode()),
                signature_algorithm=alg.encode(),
                include_headers=[b'from', b'to', b'subject', b'date', b'message-id'])
sys.stdout.buffer.write(sig + msg)
`

func TestInteropDkimpy(t *testing.T) {
	t.Parallel()
	python := interop.NeedPythonModule(t, "dkim", "python3-dkim")
	k := testKeys()
	// dkimpy takes an RSA key as PEM and an Ed25519 key as the base64 of
	// its 32-byte seed (RFC 8463 §4.2 keys).
	rsaPath := writeKeyPEM(t, k.rsa2048, true)
	edPath := filepath.Join(t.TempDir(), "ed25519.key")
	if err := os.WriteFile(edPath, []byte(base64.StdEncoding.EncodeToString(k.ed.Seed())), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		alg, keyPath string
		key          crypto.Signer
	}{
		{"rsa-sha256", rsaPath, k.rsa2048},
		{"ed25519-sha256", edPath, ed25519.PrivateKey(k.ed)},
	} {
		for _, canon := range []string{"simple", "relaxed"} {
			t.Run(tc.alg+"/"+canon, func(t *testing.T) {
				t.Parallel()
				signed := runPeer(t, interopMessage, python, "-c", dkimpyScript, tc.keyPath, tc.alg, canon)
				if !strings.Contains(signed, "c="+canon+"/"+canon) {
					t.Fatalf("not signed with c=%s/%s:\n%s", canon, canon, signed)
				}
				checkSigned(t, signed, tc.key, verify.ResultPass, verify.ResultFail, "")
			})
		}
	}
}

const mailDKIMScript = `
use strict;
use Mail::DKIM::Signer;
my ($keyfile, $method) = @ARGV;
binmode STDIN; binmode STDOUT;
my $msg = do { local $/; <STDIN> };
my $signer = Mail::DKIM::Signer->new(
	Algorithm => 'rsa-sha256', Method => $method,
	Domain => 'example.com', Selector => 'sel', KeyFile => $keyfile);
$signer->PRINT($msg);
$signer->CLOSE;
print $signer->signature->as_string, "\015\012", $msg;
`

func TestInteropMailDKIM(t *testing.T) {
	t.Parallel()
	perl := interop.NeedPerlModule(t, "Mail::DKIM::Signer", "libmail-dkim-perl")
	k := testKeys()
	keyPath := writeKeyPEM(t, k.rsa2048, true)
	for _, method := range []string{"simple/simple", "relaxed/relaxed", "relaxed"} {
		t.Run(strings.ReplaceAll(method, "/", "-"), func(t *testing.T) {
			t.Parallel()
			signed := runPeer(t, interopMessage, perl, "-e", mailDKIMScript, keyPath, method)
			if !strings.Contains(signed, "c="+method+";") {
				t.Fatalf("not signed with c=%s:\n%s", method, signed)
			}
			checkSigned(t, signed, k.rsa2048, verify.ResultPass, verify.ResultFail, "")
		})
	}
}

// OpenDKIM's opendkim-testmsg (the only signer in opendkim-tools; the
// opendkim daemon is a separate package) always signs rsa-sha1 with
// c=relaxed/simple. RFC 8301 §3.1 forbids accepting rsa-sha1, so the right
// verdict here is permerror for the intact and the altered message alike
// (the algorithm is refused before any hash is compared). dkimpy, which
// still accepts rsa-sha1, confirms the signature itself is good, so the
// permerror is about the algorithm and nothing else.
func TestInteropOpenDKIM(t *testing.T) {
	t.Parallel()
	testmsg := interop.Need(t, "opendkim-testmsg", "opendkim-tools")
	k := testKeys()
	keyPath := writeKeyPEM(t, k.rsa2048, true)
	// -C: CRLF line ends in and out (without it, opendkim 2.11.0's output
	// of the signature field can carry stray bytes after b=).
	signed := runPeer(t, interopMessage, testmsg, "-C", "-d", "example.com", "-s", "sel", "-k", keyPath, "-t", t.TempDir())
	if !strings.Contains(signed, "a=rsa-sha1") {
		t.Fatalf("opendkim-testmsg no longer signs rsa-sha1; update this test:\n%s", signed)
	}
	checkSigned(t, signed, k.rsa2048, verify.ResultPermerror, verify.ResultPermerror, "rsa-sha1 not accepted")

	python := interop.NeedPythonModule(t, "dkim", "python3-dkim")
	rec := keyRecord(k.rsa2048, "")
	const check = `
import sys, dkim
rec = sys.argv[1].encode()
ok = dkim.verify(sys.stdin.buffer.read(), dnsfunc=lambda name, timeout=5: rec)
print("pass" if ok else "fail")
`
	if got := strings.TrimSpace(runPeer(t, signed, python, "-c", check, rec)); got != "pass" {
		t.Errorf("dkimpy says the OpenDKIM signature is %s", got)
	}
}
