package dkimkey

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

// Private key errors (DKIM signing and ARC sealing). None of them carries
// key material.
var (
	// ErrKeyPermissions: the key file is readable or writable by group or
	// others. LoadPrivateKey refuses it rather than warn: a signing key
	// others can read lets them forge this host's signatures.
	ErrKeyPermissions = errors.New("signing key file accessible by group or others")
	// ErrKeyFormat: not a private key LoadPrivateKey understands.
	ErrKeyFormat = errors.New("unsupported signing key")
)

// maxKeyFile bounds a key file read into memory.
const maxKeyFile = 1 << 20

// LoadPrivateKey reads a signing key from a PEM file: PKCS#8 ("PRIVATE
// KEY", RSA or Ed25519) or PKCS#1 ("RSA PRIVATE KEY"). The file must not be
// accessible to group or others (mode 0600 or stricter, ErrKeyPermissions).
// Key sizes are the caller's to check.
func LoadPrivateKey(path string) (crypto.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if err := CheckPrivateMode(path, st.Mode()); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%w: %s is larger than 1 MiB", ErrKeyFormat, path)
	}
	key, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// CheckPrivateMode returns ErrKeyPermissions, naming path, when mode lets
// group or others read or write a file that holds a private key.
func CheckPrivateMode(path string, mode os.FileMode) error {
	if perm := mode.Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o (want 0600 or stricter)", ErrKeyPermissions, path, perm)
	}
	return nil
}

// ParsePrivateKey parses the first PEM block of data as LoadPrivateKey
// does, without the file-mode check.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
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
		return parsePKCS8(block.Bytes)
	}
	return nil, fmt.Errorf("%w: PEM block %s", ErrKeyFormat, pemLabel(block.Type))
}

// ParsePrivateDER parses a DER private key: PKCS#8 (RSA or Ed25519) or
// PKCS#1 (RSA).
func ParsePrivateDER(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if _, err := x509.ParsePKCS8PrivateKey(der); err != nil {
		return nil, fmt.Errorf("%w: neither a PKCS#8 nor a PKCS#1 key", ErrKeyFormat)
	}
	return parsePKCS8(der)
}

func parsePKCS8(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
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
