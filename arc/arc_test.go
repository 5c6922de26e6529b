package arc

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/verify"
)

const testMessage = "From: Alice <alice@origin.example>\r\n" +
	"To: list@lists.example\r\n" +
	"Subject: hello\r\n" +
	"Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n" +
	"Message-ID: <t1@origin.example>\r\n" +
	"\r\n" +
	"Body line one.\r\n" +
	"Body  line two. \r\n"

var testNow = func() time.Time { return time.Unix(1772445600, 0) }

// newEd25519Sealer returns a Sealer for domain and publishes its key in r.
func newEd25519Sealer(t testing.TB, r *dnstest.Resolver, domain string) *Sealer {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r.TXT["sel._domainkey."+domain] = []string{"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}
	return &Sealer{Domain: domain, Selector: "sel", Key: priv, Now: testNow}
}

// hopSeal validates msg and seals it with s, as a hop would.
func hopSeal(t testing.TB, r dnscache.Resolver, s *Sealer, msg string) (string, error) {
	header, body := splitMessage(t, msg)
	v := NewValidator(context.Background(), r, header, nil)
	v.Write(body)
	res := v.Close()
	fields, err := s.Seal(header, v.BodyHash(), res, "mx."+s.Domain, "arc="+string(res.Status)+"; spf=pass smtp.mailfrom=origin.example")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, f := range fields {
		b.Write(f.Raw)
	}
	return b.String() + msg, nil
}

func mustSeal(t testing.TB, r dnscache.Resolver, s *Sealer, msg string) string {
	t.Helper()
	out, err := hopSeal(t, r, s, msg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func validate(t testing.TB, r dnscache.Resolver, msg string) Result {
	t.Helper()
	res, err := Validate(context.Background(), r, strings.NewReader(msg), nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func newResolver() *dnstest.Resolver { return &dnstest.Resolver{TXT: map[string][]string{}} }

func TestNoChain(t *testing.T) {
	res := validate(t, newResolver(), testMessage)
	if res.Status != verify.StatusNone || res.Instances != 0 {
		t.Fatalf("got %+v", res)
	}
}

func TestThreeHops(t *testing.T) {
	r := newResolver()
	var sealers []*Sealer
	for _, d := range []string{"a.example", "b.example", "c.example"} {
		sealers = append(sealers, newEd25519Sealer(t, r, d))
	}
	msg := testMessage
	for _, s := range sealers {
		msg = mustSeal(t, r, s, msg)
	}
	res := validate(t, r, msg)
	if res.Status != verify.StatusPass || res.Instances != 3 || res.OldestPass != 0 {
		t.Fatalf("got %+v", res)
	}
	for i, s := range res.Sets {
		wantCV := "pass"
		if i == 0 {
			wantCV = "none"
		}
		if s.Instance != i+1 || s.CV != wantCV || !s.AMSValid || !strings.HasPrefix(s.AAR, "mx.") {
			t.Errorf("set %d: %+v", i+1, s)
		}
	}
	if res.Sets[2].Domain != "c.example" || res.Sets[2].Selector != "sel" {
		t.Errorf("set 3: %+v", res.Sets[2])
	}
}

// TestOldestPass: a field that only AMS(1) signs changes after hop 2, so
// the chain still passes but oldest-pass is 2 (RFC 8617 §5.2).
func TestOldestPass(t *testing.T) {
	r := newResolver()
	s1 := newEd25519Sealer(t, r, "a.example")
	s2 := newEd25519Sealer(t, r, "b.example")
	s2.Headers = []string{"From", "To"}
	msg := mustSeal(t, r, s2, mustSeal(t, r, s1, testMessage))
	msg = strings.Replace(msg, "Subject: hello", "Subject: [list] hello", 1)
	res := validate(t, r, msg)
	if res.Status != verify.StatusPass || res.OldestPass != 2 || res.Sets[0].AMSValid || !res.Sets[1].AMSValid {
		t.Fatalf("got %+v", res)
	}
}

func TestChunking(t *testing.T) {
	r := newResolver()
	msg := mustSeal(t, r, newEd25519Sealer(t, r, "a.example"), testMessage)
	header, body := splitMessage(t, msg)
	for _, n := range []int{1, 2, 3, 7, 64} {
		v := NewValidator(context.Background(), r, header, nil)
		for p := body; len(p) > 0; {
			k := min(n, len(p))
			v.Write(p[:k])
			p = p[k:]
		}
		if res := v.Close(); res.Status != verify.StatusPass {
			t.Errorf("chunks of %d: %s (%s)", n, res.Status, res.Reason)
		}
	}
}

func TestTampering(t *testing.T) {
	r := newResolver()
	sa, sb := newEd25519Sealer(t, r, "a.example"), newEd25519Sealer(t, r, "b.example")
	msg := mustSeal(t, r, sb, mustSeal(t, r, sa, testMessage))
	tests := []struct {
		name, old, new string
		want           error
	}{
		{"body", "Body line one.", "Body line 1.", ErrBodyHash},
		{"signed header", "Subject: hello", "Subject: bye", ErrSignature},
		{"AAR", "i=1; mx.a.example; arc=none", "i=1; mx.a.example; arc=pass", ErrSignature},
		{"cv", "cv=none", "cv=pass", ErrStructure},
	}
	for _, tt := range tests {
		res := validate(t, r, strings.Replace(msg, tt.old, tt.new, 1))
		if res.Status != verify.StatusFail || !errors.Is(res.Err, tt.want) {
			t.Errorf("%s: got %s (%v), want fail with %v", tt.name, res.Status, res.Err, tt.want)
		}
	}
}

func TestTemperror(t *testing.T) {
	r := newResolver()
	msg := mustSeal(t, r, newEd25519Sealer(t, r, "a.example"), testMessage)
	failing := &dnstest.Resolver{TXT: r.TXT, Fail: map[string]dnstest.Failure{"sel._domainkey.a.example": dnstest.ServFail}}
	res := validate(t, failing, msg)
	if res.Status != verify.StatusTemperror || !errors.Is(res.Err, ErrTemporary) || !errors.Is(res.Err, dnscache.ErrTemporary) {
		t.Fatalf("got %s (%v)", res.Status, res.Err)
	}
	// A temperror chain cannot be sealed: its cv= is unknown.
	header, _ := splitMessage(t, msg)
	s := newEd25519Sealer(t, newResolver(), "b.example")
	if _, err := s.Seal(header, make([]byte, 32), res, "mx.b.example", ""); !errors.Is(err, ErrNoVerdict) {
		t.Fatalf("Seal: %v, want ErrNoVerdict", err)
	}
}

// TestTemperrorDoesNotHideFail: the newest set's key lookup fails
// temporarily (the DNS of whoever added it, an attacker's perhaps), and an
// older seal fails for good. No answer to the failed lookup can make the
// chain pass, so it fails: a temperror would let the newest hop's DNS turn
// a broken chain that names a trusted sealer into a deferral.
func TestTemperrorDoesNotHideFail(t *testing.T) {
	r := newResolver()
	msg := mustSeal(t, r, newEd25519Sealer(t, r, "b.example"), mustSeal(t, r, newEd25519Sealer(t, r, "a.example"), testMessage))
	// AS(1) covers AAR(1): changed, it fails.
	msg = strings.Replace(msg, "i=1; mx.a.example; arc=none", "i=1; mx.a.example; arc=pass", 1)
	failing := &dnstest.Resolver{TXT: r.TXT, Fail: map[string]dnstest.Failure{"sel._domainkey.b.example": dnstest.ServFail}}
	res := validate(t, failing, msg)
	if res.Status != verify.StatusFail || !errors.Is(res.Err, ErrSignature) {
		t.Fatalf("got %s (%v), want fail: AS(1) fails whatever b.example's DNS says", res.Status, res.Err)
	}
	// With every seal sound, the same lookup failure leaves it open.
	res = validate(t, failing, strings.Replace(msg, "i=1; mx.a.example; arc=pass", "i=1; mx.a.example; arc=none", 1))
	if res.Status != verify.StatusTemperror || !errors.Is(res.Err, ErrTemporary) {
		t.Fatalf("got %s (%v), want temperror", res.Status, res.Err)
	}
}

// blockingResolver never answers until the context ends.
type blockingResolver struct{ *dnstest.Resolver }

func (blockingResolver) LookupTXT(ctx context.Context, name string) ([]string, dnscache.AnswerInfo, error) {
	<-ctx.Done()
	return nil, dnscache.AnswerInfo{}, dnscache.NewError(dnscache.ErrTemporary, name, "", ctx.Err().Error(), true)
}

func TestCloseHonoursDeadline(t *testing.T) {
	r := newResolver()
	msg := mustSeal(t, r, newEd25519Sealer(t, r, "a.example"), testMessage)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Validate(ctx, blockingResolver{r}, strings.NewReader(msg), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != verify.StatusTemperror {
		t.Fatalf("got %s (%s)", res.Status, res.Reason)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
}

// TestFailedChain: a broken chain gets one cv=fail seal covering only the
// new set (RFC 8617 §5.1.2); it validates as fail and is not extended.
func TestFailedChain(t *testing.T) {
	// Keys are all published before any lookup runs (dnstest maps must
	// not change while validators' lookups may still be reading them).
	r := newResolver()
	sa, sb, sc := newEd25519Sealer(t, r, "a.example"), newEd25519Sealer(t, r, "b.example"), newEd25519Sealer(t, r, "c.example")
	msg := mustSeal(t, r, sa, testMessage)
	msg = strings.Replace(msg, "Body line one.", "Body line 1.", 1)
	msg = mustSeal(t, r, sb, msg)
	if !strings.Contains(msg, "cv=fail") {
		t.Fatal("no cv=fail seal")
	}
	header, body := splitMessage(t, msg)
	if err := verifyNewSet(r, header, body); err != nil {
		t.Fatalf("the cv=fail set does not verify: %v", err)
	}
	res := validate(t, r, msg)
	if res.Status != verify.StatusFail || !errors.Is(res.Err, ErrFailedUpstream) || res.Instances != 2 {
		t.Fatalf("got %+v", res)
	}
	if _, err := hopSeal(t, r, sc, msg); !errors.Is(err, ErrChainFailed) {
		t.Fatalf("got %v, want ErrChainFailed", err)
	}
}

func TestInstanceLimit(t *testing.T) {
	r := newResolver()
	s := newEd25519Sealer(t, r, "a.example")
	msg := testMessage
	for i := 0; i < 50; i++ {
		msg = mustSeal(t, r, s, msg)
	}
	if res := validate(t, r, msg); res.Status != verify.StatusPass || res.Instances != 50 {
		t.Fatalf("50 sets: %s (%s)", res.Status, res.Reason)
	}
	if _, err := hopSeal(t, r, s, msg); !errors.Is(err, ErrTooManyInstances) {
		t.Fatalf("51st set: %v, want ErrTooManyInstances", err)
	}
	res, err := Validate(context.Background(), r, strings.NewReader(msg), &Options{MaxInstances: 10})
	if err != nil || res.Status != verify.StatusFail {
		t.Fatalf("MaxInstances 10: %s, %v", res.Status, err)
	}
}

func TestSealFormat(t *testing.T) {
	r := newResolver()
	s := newEd25519Sealer(t, r, "a.example")
	header, body := splitMessage(t, testMessage)
	v := NewValidator(context.Background(), r, header, nil)
	v.Write(body)
	res := v.Close()
	long := strings.Repeat("dkim=pass header.d=origin.example header.s=sel header.b=abcdefgh; ", 4)
	fields, err := s.Seal(header, v.BodyHash(), res, "mx.a.example", long)
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{HeaderSeal, HeaderAMS, HeaderAAR}
	for i, f := range fields {
		if f.Name != wantNames[i] || !bytes.HasPrefix(f.Raw, []byte(f.Name+":")) || !bytes.HasSuffix(f.Raw, []byte("\r\n")) {
			t.Errorf("field %d: %q", i, f.Raw)
		}
		if n := maxLineLen(f.Raw); n > maxLine {
			t.Errorf("%s: line of %d columns", f.Name, n)
		}
	}
	ams := string(fields[1].Raw)
	for _, want := range []string{"a=ed25519-sha256;", "c=relaxed/relaxed;", "d=a.example;", "i=1;", "t=1772445600", "h=from:to:subject:date:message-id;"} {
		if !strings.Contains(strings.Join(strings.Fields(ams), " "), want) {
			t.Errorf("AMS lacks %q: %s", want, ams)
		}
	}
	if !strings.HasPrefix(fields[2].Value(), " i=1; mx.a.example; dkim=pass") {
		t.Errorf("AAR: %q", fields[2].Raw)
	}
}

func TestSealerChecks(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	header, _ := splitMessage(t, testMessage)
	none := Result{Status: verify.StatusNone}
	bh := make([]byte, 32)
	tests := []struct {
		name string
		s    Sealer
	}{
		{"no key", Sealer{Domain: "a.example", Selector: "s"}},
		{"bad domain", Sealer{Domain: "a..example", Selector: "s", Key: priv}},
		{"bad selector", Sealer{Domain: "a.example", Selector: "s;x", Key: priv}},
		{"ARC header signed", Sealer{Domain: "a.example", Selector: "s", Key: priv, Headers: []string{"From", "ARC-Seal"}}},
		{"no From", Sealer{Domain: "a.example", Selector: "s", Key: priv, Headers: []string{"To"}}},
	}
	for _, tt := range tests {
		if _, err := tt.s.Seal(header, bh, none, "mx.a.example", ""); !errors.Is(err, ErrSealer) {
			t.Errorf("%s: %v, want ErrSealer", tt.name, err)
		}
	}
	s := Sealer{Domain: "a.example", Selector: "s", Key: priv}
	if _, err := s.Seal(header, bh[:5], none, "mx.a.example", ""); !errors.Is(err, ErrSealer) {
		t.Errorf("short body hash: %v", err)
	}
	if _, err := s.Seal(header, bh, Result{Status: verify.StatusPass, Instances: 1}, "mx.a.example", ""); !errors.Is(err, ErrSealer) {
		t.Errorf("pass without a chain: %v", err)
	}
}

func writePEM(t *testing.T, dir, name, typ string, der []byte, mode os.FileMode) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask-independent
		t.Fatal(err)
	}
	return p
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	_, ek, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8 := func(k any) []byte { b, _ := x509.MarshalPKCS8PrivateKey(k); return b }
	tests := []struct {
		name, typ string
		der       []byte
		mode      os.FileMode
		want      error
	}{
		{"rsa pkcs8", "PRIVATE KEY", pkcs8(rk), 0o600, nil},
		{"rsa pkcs1", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk), 0o400, nil},
		{"ed25519", "PRIVATE KEY", pkcs8(ek), 0o600, nil},
		{"group readable", "PRIVATE KEY", pkcs8(ek), 0o640, ErrKeyPermissions},
		{"world readable", "PRIVATE KEY", pkcs8(rk), 0o644, ErrKeyPermissions},
		{"rsa 1024", "PRIVATE KEY", pkcs8(small), 0o600, ErrKeyTooSmall},
		{"public key", "PUBLIC KEY", []byte{1, 2, 3}, 0o600, ErrKeyFormat},
		{"garbage pkcs8", "PRIVATE KEY", []byte("not a key"), 0o600, ErrKeyFormat},
	}
	for i, tt := range tests {
		p := writePEM(t, dir, tt.name+".pem", tt.typ, tt.der, tt.mode)
		k, err := LoadKey(p)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
			continue
		}
		if err != nil {
			// Errors must not leak key material.
			if b64 := base64.StdEncoding.EncodeToString(tt.der); len(b64) > 16 && strings.Contains(err.Error(), b64[8:24]) {
				t.Errorf("%s: error contains key material", tt.name)
			}
			continue
		}
		if k == nil {
			t.Errorf("%d %s: no key", i, tt.name)
		}
	}
	if _, err := LoadKey(filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestParseAAR(t *testing.T) {
	tests := []struct {
		raw  string
		n    int
		text string
		ok   bool
	}{
		{"ARC-Authentication-Results: i=1; mx.example; spf=pass\r\n", 1, "mx.example; spf=pass", true},
		{"ARC-Authentication-Results:  i = 12 ;\r\n mx.example;\r\n\tnone\r\n", 12, "mx.example; none", true},
		{"ARC-Authentication-Results: mx.example; i=1; spf=pass\r\n", 0, "", false},
		{"ARC-Authentication-Results: i=1 mx.example; spf=pass\r\n", 0, "", false},
		{"ARC-Authentication-Results: i=0; mx.example\r\n", 0, "", false},
		{"ARC-Authentication-Results: i=51; mx.example\r\n", 0, "", false},
		{"ARC-Authentication-Results: i=1;\r\n", 0, "", false},
	}
	for _, tt := range tests {
		f := message.Field{Name: HeaderAAR, Raw: []byte(tt.raw)}
		a, err := parseAAR(f, maxInstanceLimit)
		if (err == nil) != tt.ok || err == nil && (a.instance != tt.n || a.text != tt.text) {
			t.Errorf("%q: got %+v, %v", tt.raw, a, err)
		}
	}
}
