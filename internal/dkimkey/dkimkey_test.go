//go:debug rsa1024min=0

package dkimkey

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
)

func rsaRecord(t *testing.T, bits int, pkcs1 bool) (string, *rsa.PrivateKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	var der []byte
	if pkcs1 {
		der = x509.MarshalPKCS1PublicKey(&k.PublicKey)
	} else if der, err = x509.MarshalPKIXPublicKey(&k.PublicKey); err != nil {
		t.Fatal(err)
	}
	return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), k
}

func TestParse(t *testing.T) {
	t.Parallel()
	rec1024, _ := rsaRecord(t, 1024, false)
	recPKCS1, _ := rsaRecord(t, 1024, true)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	edRec := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	// A 512-bit key is generated here only to check that it is refused.
	rec512, _ := rsaRecord(t, 512, false)

	tests := []struct {
		name    string
		record  string
		wantErr error
		bits    int
	}{
		{"rsa 1024 spki", rec1024, nil, 1024},
		{"rsa 1024 pkcs1", recPKCS1, nil, 1024},
		{"ed25519", edRec, nil, 256},
		{"rsa 512 refused (RFC 8301)", rec512, ErrKeyTooSmall, 0},
		{"revoked", "v=DKIM1; p=", ErrRevoked, 0},
		{"no p", "v=DKIM1; k=rsa", ErrSyntax, 0},
		{"v not first", "k=rsa; v=DKIM1; p=AAAA", ErrVersion, 0},
		{"wrong v", "v=DKIM2; p=AAAA", ErrVersion, 0},
		{"unknown k", "k=dsa; p=AAAA", ErrKeyType, 0},
		{"not email service", "s=tlsrpt; p=AAAA", ErrService, 0},
		{"bad base64", "p=!!!", ErrBadKey, 0},
		{"garbage key", "p=AAAA", ErrBadKey, 0},
		{"ed25519 wrong size", "k=ed25519; p=AAAA", ErrBadKey, 0},
		{"syntax", "v=DKIM1;; p=AAAA", ErrSyntax, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Parse(tt.record)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if k.Bits != tt.bits {
				t.Fatalf("Bits = %d, want %d", k.Bits, tt.bits)
			}
		})
	}
}

func TestFlagsAndHashes(t *testing.T) {
	t.Parallel()
	rec, _ := rsaRecord(t, 1024, false)
	k, err := Parse(rec + "; t=y:s; h=sha256; s=email")
	if err != nil {
		t.Fatal(err)
	}
	if !k.Testing() || !k.Strict() {
		t.Errorf("flags = %v", k.Flags)
	}
	if !k.AllowsHash("sha256") || k.AllowsHash("sha1") {
		t.Errorf("hashes = %v", k.Hashes)
	}
}

func TestLookupAndVerify(t *testing.T) {
	t.Parallel()
	rec, priv := rsaRecord(t, 1024, false)
	r := &dnstest.Resolver{
		TXT:  map[string][]string{"sel._domainkey.example.com": {"not a key", rec}},
		A:    map[string][]string{"nokey._domainkey.example.com": {"192.0.2.1"}},
		Fail: map[string]dnstest.Failure{"tmp._domainkey.example.com": dnstest.Timeout},
	}
	ctx := context.Background()
	k, err := Lookup(ctx, r, "sel", "example.com")
	if err != nil {
		t.Fatal(err)
	}
	digest := Digest(crypto.SHA256, []byte("hello"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Verify(crypto.SHA256, digest, sig); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	sig[0] ^= 1
	if err := k.Verify(crypto.SHA256, digest, sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Verify tampered = %v", err)
	}
	if _, err := Lookup(ctx, r, "missing", "example.com"); !errors.Is(err, ErrNoKey) {
		t.Errorf("NXDOMAIN: %v", err)
	}
	if _, err := Lookup(ctx, r, "nokey", "example.com"); !errors.Is(err, ErrNoKey) {
		t.Errorf("NODATA: %v", err)
	}
	if _, err := Lookup(ctx, r, "tmp", "example.com"); !errors.Is(err, dnscache.ErrTemporary) {
		t.Errorf("timeout: %v", err)
	}
}

func TestEd25519Verify(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	k, err := Parse("k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub))
	if err != nil {
		t.Fatal(err)
	}
	digest := Digest(crypto.SHA256, []byte("data"))
	if err := k.Verify(crypto.SHA256, digest, ed25519.Sign(priv, digest)); err != nil {
		t.Fatal(err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC")
	f.Add("k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	f.Add("v=DKIM1; t=y:s; h=sha1:sha256; s=*; n=note; p=")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := Parse(s)
		if err == nil && k.Public == nil {
			t.Fatal("nil key without error")
		}
	})
}

func TestCache(t *testing.T) {
	t.Parallel()
	rec, priv := rsaRecord(t, 1024, false)
	c := NewCache(2)
	k1, err := c.Parse(rec)
	if err != nil {
		t.Fatal(err)
	}
	if k2, _ := c.Parse(rec); k2 != k1 {
		t.Error("the same record text parsed twice")
	}
	if !k1.Public.(*rsa.PublicKey).Equal(&priv.PublicKey) {
		t.Error("cached key differs")
	}
	// Errors are remembered too, and stay matchable.
	for range 2 {
		if _, err := c.Parse("v=DKIM1; p="); !errors.Is(err, ErrRevoked) {
			t.Fatalf("revoked: %v", err)
		}
	}
	// Bounded: a third record evicts the least recently used.
	if _, err := c.Parse("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 2 {
		t.Errorf("Len %d, want 2", c.Len())
	}
	if k3, _ := c.Parse(rec); k3 == k1 {
		t.Error("an evicted record still cached")
	}
	// Over MaxCachedRecord: parsed, not kept.
	long := rec + "; n=" + strings.Repeat("x", MaxCachedRecord)
	before := c.Len()
	a, _ := c.Parse(long)
	b, _ := c.Parse(long)
	if a == nil || a == b || c.Len() != before {
		t.Errorf("long record: %p %p, Len %d → %d", a, b, before, c.Len())
	}
	// A nil Cache parses.
	if k, err := (*Cache)(nil).Parse(rec); err != nil || k == nil {
		t.Errorf("nil cache: %v", err)
	}
}

func TestLookupKeyResolver(t *testing.T) {
	t.Parallel()
	rec, _ := rsaRecord(t, 1024, false)
	r := &KeyResolver{
		Resolver: &dnstest.Resolver{TXT: map[string][]string{
			"sel._domainkey.example.com": {rec},
			"bad._domainkey.example.com": {"v=DKIM1; k=rsa; p=AAAA"},
		}},
		Keys: NewCache(0),
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	keys := make([]*Key, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := Lookup(ctx, r, "sel", "example.com")
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if k != nil && k.Public.(*rsa.PublicKey).N.Cmp(keys[0].Public.(*rsa.PublicKey).N) != 0 {
			t.Fatal("different keys for one record")
		}
	}
	// Concurrent first lookups may each parse; afterwards one entry serves.
	k1, _ := Lookup(ctx, r, "sel", "example.com")
	if k2, _ := Lookup(ctx, r, "sel", "example.com"); k1 == nil || k2 != k1 {
		t.Error("lookups through a KeyResolver parse again")
	}
	if _, err := Lookup(ctx, r, "bad", "example.com"); !errors.Is(err, ErrBadKey) {
		t.Errorf("bad key through the cache: %v", err)
	}
	if _, err := Lookup(ctx, r, "missing", "example.com"); !errors.Is(err, ErrNoKey) {
		t.Errorf("missing: %v", err)
	}
}
