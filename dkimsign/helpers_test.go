package dkimsign

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify/dkim"
)

func rsaKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func edKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// record returns the DNS key record (RFC 6376 §3.6.1) of key.
func record(t testing.TB, key crypto.Signer) string {
	t.Helper()
	switch pub := key.Public().(type) {
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	default:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	}
}

// resolverFor publishes every key's record at its s=._domainkey.d=.
func resolverFor(t testing.TB, keys []Key) *dnstest.Resolver {
	r := &dnstest.Resolver{TXT: map[string][]string{}}
	for _, k := range keys {
		r.TXT[k.Selector+"._domainkey."+k.Domain] = []string{record(t, k.Signer)}
	}
	return r
}

// writeKey writes key as PKCS#8 PEM with mode and returns the path.
func writeKey(t testing.TB, dir, name string, key crypto.Signer, mode os.FileMode) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// signString signs msg and returns the signed message.
func signString(t testing.TB, msg string, keys []Key, opts *Options) (string, []Signature) {
	t.Helper()
	_, sigs, err := SignMessage(strings.NewReader(msg), keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range sigs {
		b.Write(s.Field.Raw)
	}
	b.WriteString(msg)
	return b.String(), sigs
}

// verifyOwn verifies msg with authmilter's verifier.
func verifyOwn(t testing.TB, r *dnstest.Resolver, msg string) []dkim.Signature {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sigs, err := dkim.Verify(ctx, r, strings.NewReader(msg), nil)
	if err != nil {
		t.Fatal(err)
	}
	return sigs
}
