package main

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"github.com/authmilter/authmilter/domain"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// runKeygen implements `authmilter keygen`: it writes a private key file
// (PKCS#8 PEM, mode 0600, never overwriting) and prints the DNS TXT record
// to publish at selector._domainkey.domain.
func runKeygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	alg := fs.String("algorithm", "rsa", "key algorithm: rsa or ed25519")
	bits := fs.Int("bits", 2048, "RSA key size in bits (2048 or more)")
	domainArg := fs.String("domain", "", "signing domain (d=)")
	selector := fs.String("selector", "", "selector (s=)")
	out := fs.String("out", "", "private key file to write (default SELECTOR.DOMAIN.key)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("keygen: unexpected argument %q", fs.Arg(0))}
	}
	if *domainArg == "" || *selector == "" {
		return usageError{errors.New("keygen: --domain and --selector are required")}
	}
	// RFC 8616 §4: the key record lives under the A-label form of the
	// domain (and selector); a U-label name is converted here, so the
	// printed record is what zone files and DNS providers take.
	dom, err := domain.Parse(*domainArg)
	if err != nil {
		return usageError{fmt.Errorf("keygen: --domain: %w", err)}
	}
	sel, err := domain.Parse(*selector)
	if err != nil {
		return usageError{fmt.Errorf("keygen: --selector: %w", err)}
	}
	path := *out
	if path == "" {
		path = sel.ASCII + "." + dom.ASCII + ".key"
	}
	priv, record, err := generateKey(*alg, *bits)
	if err != nil {
		return usageError{err}
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("keygen: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keygen: writing %s: %w", path, err)
	}
	name := sel.ASCII + "._domainkey." + dom.ASCII + "."
	fmt.Fprintf(stderr, "wrote private key to %s (mode 0600); publish this record:\n", path)
	fmt.Fprintf(stdout, "%s IN TXT ( %s )\n", name, quoteTXT(record))
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	d := dom.ASCII
	fmt.Fprintf(stderr, "then, to DKIM-sign mail from %s with it, add to the configuration and reload (SIGHUP):\n"+
		"  dkim:\n    sign:\n      keys:\n        - {domain: %s, selector: %s, key_file: %s}\n"+
		"or, to ARC-seal with it:\n  arc:\n    seal: {domain: %s, selector: %s, key_file: %s}\n", d, d, sel.ASCII, abs, d, sel.ASCII, abs)
	return nil
}

func generateKey(alg string, bits int) (crypto.Signer, string, error) {
	switch alg {
	case "rsa":
		if bits < 2048 || bits > 8192 {
			return nil, "", fmt.Errorf("keygen: RSA keys must be 2048 to 8192 bits, not %d", bits)
		}
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, "", err
		}
		pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			return nil, "", err
		}
		return k, "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub), nil
	case "ed25519":
		pub, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, "", err
		}
		// RFC 8463 §4.2: the raw public key, base64.
		return k, "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub), nil
	}
	return nil, "", fmt.Errorf("keygen: unknown algorithm %q (want rsa or ed25519)", alg)
}

// quoteTXT splits a record into quoted character-strings of at most 255
// octets (RFC 1035 §3.3), as zone files and DNS providers take them.
func quoteTXT(s string) string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, `"`+s[:255]+`"`)
		s = s[255:]
	}
	parts = append(parts, `"`+s+`"`)
	return strings.Join(parts, " ")
}
