package arc

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/authmilter/authmilter/internal/dkimkey"
)

// Key loading errors. None of them carries key material.
var (
	// ErrKeyPermissions: the key file is readable or writable by group or
	// others. LoadKey refuses it rather than warn: a signing key others can
	// read lets them forge this host's seals.
	ErrKeyPermissions = dkimkey.ErrKeyPermissions
	// ErrKeyFormat: not a PEM private key LoadKey understands.
	ErrKeyFormat = dkimkey.ErrKeyFormat
	// ErrKeyTooSmall: an RSA key shorter than MinSealRSABits.
	ErrKeyTooSmall = errors.New("arc: RSA key too small")
)

// MinSealRSABits is the smallest RSA key LoadKey accepts. RFC 8301 §3.2 has
// signers use at least 1024 and recommends 2048; we require 2048.
const MinSealRSABits = 2048

// LoadKey reads a signing key from a PEM file: PKCS#8 ("PRIVATE KEY",
// RSA or Ed25519) or PKCS#1 ("RSA PRIVATE KEY"). The file must not be
// accessible to group or others (mode 0600 or stricter, ErrKeyPermissions);
// RSA keys must have at least 2048 bits.
func LoadKey(path string) (crypto.Signer, error) {
	key, err := dkimkey.LoadPrivateKey(path)
	if err != nil {
		return nil, fmt.Errorf("arc: %w", err)
	}
	if rk, ok := key.(*rsa.PrivateKey); ok && rk.N.BitLen() < MinSealRSABits {
		return nil, fmt.Errorf("%w: %s holds a %d-bit key, want at least %d", ErrKeyTooSmall, path, rk.N.BitLen(), MinSealRSABits)
	}
	return key, nil
}

// ParseKey parses the first PEM block of data as LoadKey does, without the
// file-mode and key-size checks (use it for keys that do not come from a
// file, e.g. test vectors).
func ParseKey(data []byte) (crypto.Signer, error) {
	key, err := dkimkey.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("arc: %w", err)
	}
	return key, nil
}
