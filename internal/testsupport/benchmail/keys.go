package benchmail

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
)

// stream returns a ChaCha8 generator for one named use of the seed, so that
// adding a use does not shift the others.
func stream(seed uint64, label string) *rand.ChaCha8 {
	h := sha256.New()
	fmt.Fprintf(h, "benchmail %d %s", seed, label)
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return rand.NewChaCha8(s)
}

// rsaKey derives an RSA key of bits bits from the seed. crypto/rsa's
// GenerateKey ignores its random source since Go 1.26, so the primes are
// searched here: random odd numbers with the two top bits set (so that the
// modulus has exactly bits bits), kept when probably prime (FIPS 186-5
// §B.3 asks 2^-100: 20 Miller-Rabin rounds plus the Baillie-PSW test of
// ProbablyPrime are ample for a benchmark key).
func rsaKey(seed uint64, label string, bits int) (*rsa.PrivateKey, error) {
	r := stream(seed, "rsa "+label)
	e := big.NewInt(65537)
	one := big.NewInt(1)
	prime := func() *big.Int {
		buf := make([]byte, bits/16)
		for {
			r.Read(buf)
			buf[0] |= 0xc0
			buf[len(buf)-1] |= 1
			p := new(big.Int).SetBytes(buf)
			if !p.ProbablyPrime(20) {
				continue
			}
			// gcd(e, p-1) = 1 so that d exists.
			if new(big.Int).Mod(p, e).Cmp(one) == 0 {
				continue
			}
			return p
		}
	}
	p := prime()
	q := prime()
	for p.Cmp(q) == 0 {
		q = prime()
	}
	n := new(big.Int).Mul(p, q)
	pm, qm := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
	phi := new(big.Int).Mul(pm, qm)
	d := new(big.Int).ModInverse(e, phi)
	if d == nil {
		return nil, errors.New("benchmail: no RSA private exponent")
	}
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: n, E: 65537},
		D:         d,
		Primes:    []*big.Int{p, q},
	}
	k.Precompute()
	if err := k.Validate(); err != nil {
		return nil, fmt.Errorf("benchmail: RSA key %s: %w", label, err)
	}
	return k, nil
}

// ed25519Key derives an Ed25519 key from the seed (RFC 8032 keys are their
// 32-byte seed).
func ed25519Key(seed uint64, label string) ed25519.PrivateKey {
	var s [ed25519.SeedSize]byte
	stream(seed, "ed25519 "+label).Read(s[:])
	return ed25519.NewKeyFromSeed(s[:])
}

// keyRecord is the DKIM key record (RFC 6376 §3.6.1) of a public key.
func keyRecord(pub any) (string, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		// RFC 8463 §4.2: the raw 32-byte key.
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k), nil
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	}
	return "", fmt.Errorf("benchmail: unsupported key type %T", pub)
}
