package arc

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/interop"
	"github.com/authmilter/authmilter/verify"
)

// dkimpyScript drives dkimpy (python3-dkim): "sign" prints the ARC Set it
// adds, "verify" prints the chain status. DNS answers come from a JSON
// file of name → TXT record written by the test.
const dkimpyScript = `
import sys, json, dkim
mode, dnsfile, msgfile = sys.argv[1:4]
records = json.load(open(dnsfile))
def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    v = records.get(name.rstrip('.').lower())
    return v.encode() if v is not None else None
msg = open(msgfile, 'rb').read()
if mode == 'verify':
    cv, results, reason = dkim.arc_verify(msg, dnsfunc=dnsfunc)
    sys.stdout.write(cv.decode() if isinstance(cv, bytes) else str(cv))
    sys.stderr.write(str(reason))
else:
    keyfile, sel, dom, srv = sys.argv[4:8]
    hdrs = dkim.arc_sign(msg, sel.encode(), dom.encode(), open(keyfile, 'rb').read(), srv.encode(),
                         include_headers=[b'from', b'to', b'subject', b'date', b'message-id'])
    if not hdrs:
        sys.exit('dkimpy added no ARC set')
    sys.stdout.buffer.write(b''.join(hdrs))
`

// mailDKIMScript drives Mail::DKIM (libmail-dkim-perl) with its DNS
// pointed at dnstest.Serve.
const mailDKIMScript = `
use strict; use warnings;
use Mail::DKIM::ARC::Signer; use Mail::DKIM::ARC::Verifier; use Mail::DKIM::DNS; use Net::DNS::Resolver;
my ($mode, $dns, $msgfile, $keyfile, $sel, $dom, $srv) = @ARGV;
my ($host, $port) = split /:/, $dns;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(nameservers => [$host], port => $port, recurse => 1, udp_timeout => 5, tcp_timeout => 5, retry => 1));
my $msg = do { open(my $fh, '<:raw', $msgfile) or die $!; local $/; <$fh> };
if ($mode eq 'verify') {
    my $v = Mail::DKIM::ARC::Verifier->new;
    $v->PRINT($msg); $v->CLOSE;
    print $v->result; print STDERR $v->result_detail;
} else {
    my $s = Mail::DKIM::ARC::Signer->new(Algorithm => 'rsa-sha256', Chain => 'ar', Domain => $dom, SrvId => $srv,
        Selector => $sel, KeyFile => $keyfile, Headers => 'from:to:subject:date:message-id');
    $s->PRINT($msg); $s->CLOSE;
    die 'Mail::DKIM did not seal: ' . ($s->result // '') . ' ' . ($s->result_detail // '') unless ($s->result // '') eq 'sealed';
    print $s->as_string;
}
`

// hop is one sealing domain with its key.
type hop struct {
	domain, selector, srvID string
	pkcs1File               string // for the peers
	ourKeyFile              string // PKCS#8, mode 0600, for LoadKey
}

type interopEnv struct {
	t        *testing.T
	dir      string
	r        *dnstest.Resolver
	dnsFile  string
	dnsAddr  string
	python   string
	perl     string
	pyScript string
	plScript string
}

func newInteropEnv(t *testing.T) *interopEnv {
	python := interop.NeedPythonModule(t, "dkim", "python3-dkim")
	perl := interop.NeedPerlModule(t, "Mail::DKIM::ARC::Signer", "libmail-dkim-perl")
	e := &interopEnv{t: t, dir: t.TempDir(), r: &dnstest.Resolver{TXT: map[string][]string{}}, python: python, perl: perl}
	e.pyScript = e.write("dkimpy_arc.py", dkimpyScript, 0o600)
	e.plScript = e.write("maildkim_arc.pl", mailDKIMScript, 0o600)
	e.dnsAddr = dnstest.Serve(t, e.r)
	return e
}

func (e *interopEnv) write(name, content string, mode os.FileMode) string {
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// newHop generates an RSA-2048 key for domain and publishes it.
func (e *interopEnv) newHop(domain, selector string) hop {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		e.t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	h := hop{domain: domain, selector: selector, srvID: "mx." + domain}
	h.pkcs1File = e.write(domain+".pkcs1.pem", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})), 0o600)
	h.ourKeyFile = e.write(domain+".pkcs8.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})), 0o600)
	e.publish(selector+"._domainkey."+domain, "v=DKIM1; k=rsa; p="+base64.StdEncoding.EncodeToString(spki))
	return h
}

func (e *interopEnv) publish(name, record string) {
	e.r.TXT[name] = []string{record}
	all := map[string]string{}
	for n, v := range e.r.TXT {
		all[n] = v[0]
	}
	data, _ := json.Marshal(all)
	e.dnsFile = e.write("dns.json", string(data), 0o600)
}

func (e *interopEnv) run(name string, args ...string) (string, string) {
	e.t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("%s %s: %v\n%s", filepath.Base(name), args[0], err, errb.String())
	}
	return out.String(), errb.String()
}

func (e *interopEnv) msgFile(msg string) string { return e.write("msg.eml", msg, 0o600) }

// addAR puts this hop's Authentication-Results on top, with its arc=
// verdict (dkimpy and Mail::DKIM take cv= from it).
func addAR(msg, srvID string, cv verify.Status) string {
	return "Authentication-Results: " + srvID + "; arc=" + string(cv) + "; spf=pass smtp.mailfrom=alice@origin.example\r\n" + msg
}

func (e *interopEnv) sealDkimpy(msg string, h hop) string {
	// dkimpy's arc_sign parses Authentication-Results with authres, which
	// python3-dkim only recommends.
	interop.NeedPythonModule(e.t, "authres", "python3-authres")
	out, _ := e.run(e.python, e.pyScript, "sign", e.dnsFile, e.msgFile(msg), h.pkcs1File, h.selector, h.domain, h.srvID)
	return crlf(out) + msg
}

func (e *interopEnv) sealMailDKIM(msg string, h hop) string {
	out, _ := e.run(e.perl, e.plScript, "sign", e.dnsAddr, e.msgFile(msg), h.pkcs1File, h.selector, h.domain, h.srvID)
	return crlf(out) + msg
}

func (e *interopEnv) sealOurs(msg string, h hop) string {
	key, err := LoadKey(h.ourKeyFile)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.sealWith(msg, &Sealer{Domain: h.domain, Selector: h.selector, Key: key}, h.srvID)
}

func (e *interopEnv) sealWith(msg string, s *Sealer, srvID string) string {
	header, body := splitMessage(e.t, msg)
	v := NewValidator(context.Background(), e.r, header, nil)
	v.Write(body)
	chain := v.Close()
	fields, err := s.Seal(header, v.BodyHash(), chain, srvID, "arc="+string(chain.Status))
	if err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range fields {
		b.Write(f.Raw)
	}
	return b.String() + msg
}

func (e *interopEnv) verifyOurs(msg string) Result {
	res, err := Validate(context.Background(), e.r, strings.NewReader(msg), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *interopEnv) verifyDkimpy(msg string) (string, string) {
	return e.run(e.python, e.pyScript, "verify", e.dnsFile, e.msgFile(msg))
}

func (e *interopEnv) verifyMailDKIM(msg string) (string, string) {
	return e.run(e.perl, e.plScript, "verify", e.dnsAddr, e.msgFile(msg))
}

// expectEverywhere checks the verdict of all three validators.
func (e *interopEnv) expectEverywhere(msg string, want verify.Status) {
	e.t.Helper()
	if res := e.verifyOurs(msg); res.Status != want {
		e.t.Errorf("authmilter: %s (%s), want %s", res.Status, res.Reason, want)
	}
	if got, why := e.verifyDkimpy(msg); got != string(want) {
		e.t.Errorf("dkimpy: %s (%s), want %s", got, why, want)
	}
	if got, why := e.verifyMailDKIM(msg); got != string(want) {
		e.t.Errorf("Mail::DKIM: %s (%s), want %s", got, why, want)
	}
}

const interopBase = "From: Alice <alice@origin.example>\r\n" +
	"To: list@lists.example\r\n" +
	"Subject: interop  test\r\n" +
	"Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n" +
	"Message-ID: <interop-1@origin.example>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain\r\n" +
	"\r\n" +
	"Hello,  world.\r\n" +
	"Second line with trailing space \r\n" +
	"\r\n"

func tamperBody(msg string) string { return strings.Replace(msg, "Hello,  world.", "Hello, world!", 1) }
func tamperSubject(msg string) string {
	return strings.Replace(msg, "Subject: interop  test", "Subject: interop test changed", 1)
}

func TestInteropOursToPeers(t *testing.T) {
	e := newInteropEnv(t)
	h := e.newHop("ours.example", "s2026")
	msg := e.sealOurs(addAR(interopBase, h.srvID, verify.StatusNone), h)
	e.expectEverywhere(msg, verify.StatusPass)
	e.expectEverywhere(tamperBody(msg), verify.StatusFail)
	e.expectEverywhere(tamperSubject(msg), verify.StatusFail)
}

func TestInteropDkimpyToOurs(t *testing.T) {
	e := newInteropEnv(t)
	h := e.newHop("py.example", "py1")
	msg := e.sealDkimpy(addAR(interopBase, h.srvID, verify.StatusNone), h)
	e.expectEverywhere(msg, verify.StatusPass)
	e.expectEverywhere(tamperBody(msg), verify.StatusFail)
}

func TestInteropMailDKIMToOurs(t *testing.T) {
	e := newInteropEnv(t)
	h := e.newHop("perl.example", "pl1")
	msg := e.sealMailDKIM(addAR(interopBase, h.srvID, verify.StatusNone), h)
	e.expectEverywhere(msg, verify.StatusPass)
	e.expectEverywhere(tamperBody(msg), verify.StatusFail)
}

// TestInteropThreeHops: dkimpy seals i=1, Mail::DKIM i=2, authmilter i=3;
// then the other orders' last hops. Every validator must agree.
func TestInteropThreeHops(t *testing.T) {
	e := newInteropEnv(t)
	py, pl, us := e.newHop("py.example", "py1"), e.newHop("perl.example", "pl1"), e.newHop("ours.example", "s2026")

	msg := e.sealDkimpy(addAR(interopBase, py.srvID, verify.StatusNone), py)
	msg = e.sealMailDKIM(addAR(msg, pl.srvID, e.verifyOurs(msg).Status), pl)
	msg = e.sealOurs(addAR(msg, us.srvID, e.verifyOurs(msg).Status), us)
	if res := e.verifyOurs(msg); res.Instances != 3 || res.OldestPass != 0 {
		t.Errorf("want 3 instances, oldest-pass 0: %+v", res)
	}
	e.expectEverywhere(msg, verify.StatusPass)
	e.expectEverywhere(tamperBody(msg), verify.StatusFail)
	e.expectEverywhere(tamperSubject(msg), verify.StatusFail)

	// The reverse order: we seal i=1, Mail::DKIM i=2, dkimpy i=3.
	rev := e.sealOurs(addAR(interopBase, us.srvID, verify.StatusNone), us)
	rev = e.sealMailDKIM(addAR(rev, pl.srvID, e.verifyOurs(rev).Status), pl)
	rev = e.sealDkimpy(addAR(rev, py.srvID, e.verifyOurs(rev).Status), py)
	e.expectEverywhere(rev, verify.StatusPass)
	e.expectEverywhere(tamperBody(rev), verify.StatusFail)
}

// TestInteropEd25519 seals with Ed25519 (RFC 8463). Neither peer in Debian
// 12 handles it in ARC: Mail::DKIM 1.20230212 has no Ed25519 at all, and
// dkimpy 1.1.4's arc_sign always uses rsa-sha256 (its verifier reports
// Ed25519 ARC seals as unknown algorithm, as the stalwart vector notes say).
// So the Ed25519 chain is checked by our validator only, mixed with an RSA
// hop sealed by dkimpy below it.
func TestInteropEd25519(t *testing.T) {
	e := newInteropEnv(t)
	py := e.newHop("py.example", "py1")
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.publish("ed._domainkey.ed.example", "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub))
	msg := e.sealDkimpy(addAR(interopBase, py.srvID, verify.StatusNone), py)
	s := &Sealer{Domain: "ed.example", Selector: "ed", Key: priv, Now: func() time.Time { return time.Unix(1772445600, 0) }}
	msg = e.sealWith(msg, s, "mx.ed.example")
	if !strings.Contains(msg, "a=ed25519-sha256") {
		t.Fatal("no Ed25519 seal")
	}
	if res := e.verifyOurs(msg); res.Status != verify.StatusPass {
		t.Errorf("authmilter: %s (%s)", res.Status, res.Reason)
	}
	if res := e.verifyOurs(tamperBody(msg)); res.Status != verify.StatusFail {
		t.Errorf("tampered: %s", res.Status)
	}
	got, why := e.verifyDkimpy(msg)
	t.Logf("dkimpy on an Ed25519 ARC seal (not required): %s (%s)", got, why)
}
