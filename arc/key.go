package arc

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
)

// Key loading errors. None of them carries key material.
var (
	// ErrKeyPermissions: the key file is readable or writable by group or
	// others. LoadKey refuses it rather than warn: a signing key others can
	// read lets them forge this host's seals.
	ErrKeyPermissions = errors.New("arc: key file accessible by group or others")
	// ErrKeyFormat: not a PEM private key LoadKey understands.
	ErrKeyFormat = errors.New("arc: unsupported key file")
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
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("arc: key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("arc: key: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o (want 0600 or stricter)", ErrKeyPermissions, path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, 1<<20+1))
	if err != nil {
		return nil, fmt.Errorf("arc: key: %w", err)
	}
	if len(data) > 1<<20 {
		return nil, fmt.Errorf("%w: %s is larger than 1 MiB", ErrKeyFormat, path)
	}
	key, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
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
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrKeyFormat)
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: invalid PKCS#1 RSA key", ErrKeyFormat)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: invalid PKCS#8 key", ErrKeyFormat)
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		default:
			return nil, fmt.Errorf("%w: PKCS#8 key of type %T (want RSA or Ed25519)", ErrKeyFormat, k)
		}
	}
	return nil, fmt.Errorf("%w: PEM block %s", ErrKeyFormat, pemLabel(block.Type))
}

// pemLabel quotes a PEM block type for an error message when it looks like
// one (RFC 7468 §2 labels: upper-case words); anything else, such as key
// text pasted onto the BEGIN line, is not repeated.
func pemLabel(t string) string {
	ok := len(t) <= 40
	for _, c := range t {
		ok = ok && (c == ' ' || c == '-' || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9'))
	}
	if !ok {
		return "of an unrecognised type"
	}
	return fmt.Sprintf("%q", t)
}
