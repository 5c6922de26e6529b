// Package dkimkey parses and looks up DKIM public key records (RFC 6376
// §3.6.1, RFC 8463 for Ed25519) and applies the key rules of RFC 8301. DKIM
// verification and ARC (RFC 8617 §4.1.2, which uses DKIM keys) share it.
package dkimkey

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/internal/tagvalue"
)

// Errors, grouped by phase. Lookup errors: ErrNoKey, and DNS temporary
// failures (which unwrap to dnscache.ErrTemporary). Key errors: the rest.
// Callers map temporary failures to temperror and everything else to
// permerror (RFC 6376 §6.1.2).
var (
	ErrNoKey          = errors.New("no key record")
	ErrSyntax         = errors.New("key record syntax error")
	ErrRevoked        = errors.New("key revoked (empty p=)")
	ErrVersion        = errors.New("key record has wrong v=")
	ErrKeyType        = errors.New("unsupported key type")
	ErrService        = errors.New("key not for email service")
	ErrKeyTooSmall    = errors.New("RSA key shorter than 1024 bits")
	ErrBadKey         = errors.New("invalid public key data")
	ErrHashNotAllowed = errors.New("hash algorithm not allowed by key h=")
	ErrBadSignature   = errors.New("signature does not verify")
)

// MinRSABits is the smallest RSA key accepted (RFC 8301 §3.2: verifiers MUST
// NOT consider signatures using keys of less than 1024 bits valid).
const MinRSABits = 1024

// Key is a parsed key record.
type Key struct {
	Type     string           // "rsa" or "ed25519" (k=)
	Public   crypto.PublicKey // *rsa.PublicKey or ed25519.PublicKey
	Bits     int              // RSA modulus length; 256 for Ed25519
	Hashes   []string         // h= (nil: any)
	Services []string         // s= (default "*")
	Flags    []string         // t=
	Notes    string           // n=
}

// Testing reports the t=y flag: the domain is testing DKIM (RFC 6376 §3.6.1).
func (k *Key) Testing() bool { return k.hasFlag("y") }

// Strict reports the t=s flag: the i= domain must equal d=, not a subdomain.
func (k *Key) Strict() bool { return k.hasFlag("s") }

func (k *Key) hasFlag(f string) bool {
	for _, x := range k.Flags {
		if x == f {
			return true
		}
	}
	return false
}

// AllowsHash reports whether the key's h= tag permits the hash algorithm
// ("sha256", "sha1").
func (k *Key) AllowsHash(h string) bool {
	if k.Hashes == nil {
		return true
	}
	for _, x := range k.Hashes {
		if strings.EqualFold(x, h) {
			return true
		}
	}
	return false
}

// Parse parses a key record. It enforces RFC 8301 (RSA ≥ 1024 bits) and
// RFC 6376 §3.6.1: v= (if present) must be the first tag and "DKIM1"; s=
// must include "email" or "*"; unknown tags are ignored; an empty p= means
// the key was revoked.
func Parse(record string) (*Key, error) {
	tags, err := tagvalue.Parse(record)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if v, ok := tags.Get("v"); ok && (tags[0].Name != "v" || v != "DKIM1") {
		return nil, fmt.Errorf("%w: %q", ErrVersion, v)
	}
	k := &Key{Type: "rsa", Services: []string{"*"}}
	if v, ok := tags.Get("k"); ok {
		k.Type = strings.ToLower(v)
	}
	if v, ok := tags.Get("h"); ok {
		k.Hashes = splitColon(v)
	}
	if v, ok := tags.Get("s"); ok {
		k.Services = splitColon(v)
		if !contains(k.Services, "*") && !contains(k.Services, "email") {
			return nil, fmt.Errorf("%w: s=%s", ErrService, v)
		}
	}
	if v, ok := tags.Get("t"); ok {
		k.Flags = splitColon(v)
	}
	k.Notes, _ = tags.Get("n")
	p, ok := tags.Get("p")
	if !ok {
		return nil, fmt.Errorf("%w: no p= tag", ErrSyntax)
	}
	p = tagvalue.StripFWS(p)
	if p == "" {
		return nil, ErrRevoked
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return nil, fmt.Errorf("%w: p= is not base64: %v", ErrBadKey, err)
	}
	switch k.Type {
	case "rsa":
		pub, err := parseRSA(der)
		if err != nil {
			return nil, err
		}
		k.Public, k.Bits = pub, pub.N.BitLen()
		if k.Bits < MinRSABits {
			return nil, fmt.Errorf("%w: %d bits", ErrKeyTooSmall, k.Bits)
		}
	case "ed25519":
		// RFC 8463 §4.2: the raw 32-byte public key, base64-encoded.
		if len(der) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: Ed25519 key of %d bytes", ErrBadKey, len(der))
		}
		k.Public, k.Bits = ed25519.PublicKey(der), 256
	default:
		return nil, fmt.Errorf("%w: k=%s", ErrKeyType, k.Type)
	}
	return k, nil
}

// parseRSA accepts SubjectPublicKeyInfo (RFC 6376 §3.6.1) and, as deployed
// signers publish it, a bare PKCS#1 RSAPublicKey.
func parseRSA(der []byte) (*rsa.PublicKey, error) {
	if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: k=rsa but key is %T", ErrBadKey, pub)
		}
		return rk, nil
	}
	rk, err := x509.ParsePKCS1PublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: not an RSA public key", ErrBadKey)
	}
	return rk, nil
}

func splitColon(s string) []string {
	parts := strings.Split(s, ":")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(tagvalue.StripFWS(p)); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// Name returns the DNS name of a key: selector._domainkey.domain.
func Name(selector, domain string) string {
	return selector + "._domainkey." + strings.TrimSuffix(domain, ".")
}

// Lookup fetches and parses the key for selector and domain; when r is a
// *KeyResolver, through its Cache. NXDOMAIN and
// NODATA give ErrNoKey; a temporary DNS failure is returned wrapped (match
// it with errors.Is(err, dnscache.ErrTemporary)). When several TXT records
// exist (RFC 6376 §3.6.2.2 leaves that undefined), the first that parses is
// used; if none does, the first record's error is returned.
func Lookup(ctx context.Context, r dnscache.Resolver, selector, domain string) (*Key, error) {
	name := Name(selector, domain)
	txts, _, err := r.LookupTXT(ctx, name)
	if err != nil {
		if dnscache.IsNotFound(err) {
			return nil, fmt.Errorf("%w at %s", ErrNoKey, name)
		}
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	parse := Parse
	if kr, ok := r.(*KeyResolver); ok && kr.Keys != nil {
		parse = kr.Keys.Parse
	}
	var first error
	for _, txt := range txts {
		k, err := parse(txt)
		if err == nil {
			return k, nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		return nil, fmt.Errorf("%w at %s", ErrNoKey, name)
	}
	return nil, fmt.Errorf("key %s: %w", name, first)
}

// HashFor returns the crypto.Hash for a DKIM a= hash name.
func HashFor(name string) (crypto.Hash, bool) {
	switch strings.ToLower(name) {
	case "sha256":
		return crypto.SHA256, true
	case "sha1":
		return crypto.SHA1, true
	}
	return 0, false
}

// Verify checks sig over the given digest (computed with hash) using the key:
// RSASSA-PKCS1-v1_5 for RSA (RFC 6376 §3.3.1), and for Ed25519 a pure
// Ed25519 signature over the digest (RFC 8463 §3).
func (k *Key) Verify(hash crypto.Hash, digest, sig []byte) error {
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, hash, digest, sig); err != nil {
			return ErrBadSignature
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(pub, digest, sig) {
			return ErrBadSignature
		}
	default:
		return ErrKeyType
	}
	return nil
}

// Digest hashes data with hash (SHA-256 or SHA-1).
func Digest(hash crypto.Hash, data []byte) []byte {
	if hash == crypto.SHA1 {
		s := sha1.Sum(data)
		return s[:]
	}
	s := sha256.Sum256(data)
	return s[:]
}

// Cache remembers parsed key records by their text, so that a key seen
// again (the same selector on every message of a sender) is not parsed
// again: base64, ASN.1 and big-number work that otherwise costs about as
// much as verifying an RSA signature. The parse of a text never changes, so
// entries need no TTL: when the DNS answer changes, its new text is a new
// entry and the old one ages out. A Cache holds at most its size entries
// (least recently used evicted) of records up to MaxCachedRecord bytes, and
// is safe for concurrent use. Cached keys are shared: callers must not
// modify a *Key returned by Lookup.
type Cache struct {
	entries *lru.Cache[string, parsed]
}

type parsed struct {
	key *Key
	err error
}

// MaxCachedRecord bounds the text of a record kept in a Cache (an RSA-8192
// record is about 1.5 KB); longer ones are parsed every time.
const MaxCachedRecord = 4096

// DefaultCacheSize is the number of parsed keys NewCache keeps for size 0.
const DefaultCacheSize = 1000

// NewCache returns a Cache of at most size parsed records (0:
// DefaultCacheSize).
func NewCache(size int) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	entries, err := lru.New[string, parsed](size)
	if err != nil {
		panic("dkimkey: " + err.Error())
	}
	return &Cache{entries: entries}
}

// Parse is the package's Parse, through the cache.
func (c *Cache) Parse(record string) (*Key, error) {
	if c == nil || len(record) > MaxCachedRecord {
		return Parse(record)
	}
	if p, ok := c.entries.Get(record); ok {
		return p.key, p.err
	}
	k, err := Parse(record)
	c.entries.Add(strings.Clone(record), parsed{k, err})
	return k, err
}

// Len returns the number of records cached.
func (c *Cache) Len() int { return c.entries.Len() }

// KeyResolver is a dnscache.Resolver that carries a Cache: Lookup given one
// parses each key record through it. DKIM verification and ARC validation
// take a plain Resolver; handing them a *KeyResolver is how they share one
// cache without another parameter.
type KeyResolver struct {
	dnscache.Resolver
	Keys *Cache
}

// HonoursCacheOnly implements dnscache.CacheOnlyResolver: a KeyResolver honours
// cache-only mode (dnscache.WithCacheOnly) exactly when the Resolver it wraps
// does.
func (kr KeyResolver) HonoursCacheOnly() bool {
	return kr.Resolver != nil && dnscache.HonoursCacheOnly(kr.Resolver)
}

var _ dnscache.CacheOnlyResolver = KeyResolver{}
