//go:debug rsa1024min=0

// The directive above lets the tests generate and sign with a 512-bit RSA
// key, to check that verification rejects it (RFC 8301 §3.2).

package dkim

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/message"
)

// testKeys are generated once per test binary (RSA-2048 generation is slow
// under -race) and never modified.
type testKeySet struct {
	rsa2048, rsa1024, rsa512 *rsa.PrivateKey
	ed                       ed25519.PrivateKey
}

var testKeys = sync.OnceValue(func() *testKeySet {
	gen := func(bits int) *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			panic(err)
		}
		return k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &testKeySet{rsa2048: gen(2048), rsa1024: gen(1024), rsa512: gen(512), ed: ed}
})

// keyRecord returns the DKIM key TXT record for key (RFC 6376 §3.6.1,
// RFC 8463 §4.2), with extra tags (e.g. "t=y; ") before p=.
func keyRecord(key crypto.Signer, extra string) string {
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			panic(err)
		}
		return "v=DKIM1; k=rsa; " + extra + "p=" + base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; " + extra + "p=" + base64.StdEncoding.EncodeToString(pub)
	}
	panic("unknown key type")
}

// writeKeyPEM writes key as a PKCS#8 PEM file (RSA keys as PKCS#1 when
// pkcs1 is set, the form some tools want) and returns its path.
func writeKeyPEM(t testing.TB, key crypto.Signer, pkcs1 bool) string {
	t.Helper()
	var block *pem.Block
	if rk, ok := key.(*rsa.PrivateKey); ok && pkcs1 {
		block = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}
	} else {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// signSpec describes a signature made by testSign, an independent,
// minimal RFC 6376 signer used to make the inputs of the tests (including
// what go-msgauth's signer refuses to make: rsa-sha1, l=, small keys).
type signSpec struct {
	key        crypto.Signer
	domain     string // default example.com
	selector   string // default sel
	hash       string // "sha256" (default) or "sha1"
	relaxed    bool   // relaxed/relaxed instead of simple/simple
	headers    string // h=, default "From:To:Subject:Date"
	identifier string // i=, optional
	length     int    // l= when > 0 (a length of 0 cannot be asked for)
	extra      string // extra tags, e.g. "x=123; "
}

// testSign prepends a DKIM-Signature to msg (CRLF line ends).
func testSign(t testing.TB, msg string, sp signSpec) string {
	t.Helper()
	if sp.domain == "" {
		sp.domain = "example.com"
	}
	if sp.selector == "" {
		sp.selector = "sel"
	}
	if sp.hash == "" {
		sp.hash = "sha256"
	}
	if sp.headers == "" {
		sp.headers = "From:To:Subject:Date"
	}
	i := strings.Index(msg, "\r\n\r\n")
	if i < 0 {
		t.Fatal("message without body separator")
	}
	fields, err := message.ReadHeader(bufio.NewReader(strings.NewReader(msg[:i+4])), message.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	body := canonBody(msg[i+4:], sp.relaxed)
	if sp.length > 0 && sp.length < len(body) {
		body = body[:sp.length]
	}
	newHash := sha256.New
	if sp.hash == "sha1" {
		newHash = sha1.New
	}
	h := newHash()
	h.Write([]byte(body))
	bh := base64.StdEncoding.EncodeToString(h.Sum(nil))

	keyAlg := "rsa"
	if _, ok := sp.key.Public().(ed25519.PublicKey); ok {
		keyAlg = "ed25519"
	}
	c := "simple/simple"
	if sp.relaxed {
		c = "relaxed/relaxed"
	}
	var tags strings.Builder
	fmt.Fprintf(&tags, " v=1; a=%s-%s; c=%s; d=%s; s=%s;\r\n\th=%s; ", keyAlg, sp.hash, c, sp.domain, sp.selector, sp.headers)
	if sp.identifier != "" {
		fmt.Fprintf(&tags, "i=%s; ", sp.identifier)
	}
	if sp.length > 0 {
		fmt.Fprintf(&tags, "l=%d; ", sp.length)
	}
	tags.WriteString(sp.extra)
	fmt.Fprintf(&tags, "bh=%s;\r\n\tb=", bh)

	// RFC 6376 §5.4.2: for each name in h=, the last unused instance,
	// from the bottom up.
	h = newHash()
	used := map[int]bool{}
	for _, name := range strings.Split(sp.headers, ":") {
		for j := len(fields) - 1; j >= 0; j-- {
			if !used[j] && strings.EqualFold(fields[j].Name, strings.TrimSpace(name)) {
				used[j] = true
				h.Write([]byte(canonHeader(string(fields[j].Raw), sp.relaxed)))
				break
			}
		}
	}
	sigField := canonHeader("DKIM-Signature:"+tags.String()+"\r\n", sp.relaxed)
	h.Write([]byte(strings.TrimSuffix(sigField, "\r\n")))
	digest := h.Sum(nil)

	var sig []byte
	switch k := sp.key.(type) {
	case *rsa.PrivateKey:
		hh := crypto.SHA256
		if sp.hash == "sha1" {
			hh = crypto.SHA1
		}
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, hh, digest)
	case ed25519.PrivateKey:
		// RFC 8463 §3: Ed25519 over the SHA-256 hash.
		sig = ed25519.Sign(k, digest)
	}
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(sig)
	// Fold b= to show that FWS inside it is removed.
	folded := b64[:len(b64)/2] + "\r\n\t " + b64[len(b64)/2:]
	return "DKIM-Signature:" + tags.String() + folded + "\r\n" + msg
}

var wspRun = regexp.MustCompile(`[ \t]+`)

func canonBody(body string, relaxed bool) string {
	if relaxed {
		lines := strings.Split(body, "\r\n")
		for i, l := range lines {
			lines[i] = strings.TrimRight(wspRun.ReplaceAllString(l, " "), " ")
		}
		body = strings.Join(lines, "\r\n")
		body = strings.TrimRight(body, "\r\n")
		if body == "" {
			return ""
		}
		return body + "\r\n"
	}
	for strings.HasSuffix(body, "\r\n") {
		body = strings.TrimSuffix(body, "\r\n")
	}
	return body + "\r\n"
}

func canonHeader(raw string, relaxed bool) string {
	if !relaxed {
		return raw
	}
	name, value, _ := strings.Cut(raw, ":")
	value = strings.ReplaceAll(value, "\r\n", "")
	value = strings.TrimSpace(wspRun.ReplaceAllString(value, " "))
	return strings.ToLower(strings.TrimSpace(name)) + ":" + value + "\r\n"
}

// testMessage returns a message with CRLF line ends and a body of about
// size bytes.
func testMessage(size int) string {
	var b strings.Builder
	b.WriteString("From: Alice <alice@example.com>\r\n")
	b.WriteString("To: Bob <bob@example.net>\r\n")
	b.WriteString("Subject: Lunch \t on   Friday?\r\n")
	b.WriteString("Date: Fri, 13 Mar 2026 12:00:00 +0000\r\n")
	b.WriteString("Message-ID: <1234@example.com>\r\n")
	b.WriteString("\r\n")
	line := "The quick brown fox jumps over the lazy dog.  \t Again and again.\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	b.WriteString("\r\n\r\n")
	return b.String()
}

// resolverFor returns a fake resolver with the given key records, keyed by
// selector._domainkey.domain.
func resolverFor(records map[string]string) *dnstest.Resolver {
	r := &dnstest.Resolver{TXT: map[string][]string{}, Fail: map[string]dnstest.Failure{}}
	for name, rec := range records {
		r.TXT[name] = []string{rec}
	}
	return r
}

func verifyString(t testing.TB, r *dnstest.Resolver, msg string, opts *Options) []Signature {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sigs, err := Verify(ctx, r, strings.NewReader(msg), opts)
	if err != nil {
		t.Fatal(err)
	}
	return sigs
}

// checkNoLeak fails the test if, once it ends, goroutines started by this
// package or go-msgauth are still running. It looks at stacks rather than
// counts, so that it works beside parallel tests.
func checkNoLeak(t *testing.T) {
	t.Cleanup(func() {
		var stacks string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			buf := make([]byte, 1<<20)
			stacks = string(buf[:runtime.Stack(buf, true)])
			if !leaked(stacks) {
				return
			}
		}
		t.Errorf("goroutines leaked:\n%s", stacks)
	})
}

func leaked(stacks string) bool {
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "testing.tRunner") || strings.Contains(g, "testing.(*T).Run") {
			continue
		}
		// Key lookups that need the network run in goroutines started by
		// dkimkey.Start.
		if strings.Contains(g, "emersion/go-msgauth") || strings.Contains(g, "verify/dkim.(*Verifier)") ||
			strings.Contains(g, "verify/dkim.NewVerifier") || strings.Contains(g, "internal/dkimkey.Start") {
			return true
		}
	}
	return false
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
