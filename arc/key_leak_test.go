package arc

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadKeyErrorsHideKey: whatever is wrong with a key file, the error
// names the file and the problem, never the key material.
func TestLoadKeyErrorsHideKey(t *testing.T) {
	t.Parallel()
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKCS8PrivateKey(ed)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	good := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	corrupt := append([]byte(nil), der...)
	corrupt[1] ^= 0x40 // the outer SEQUENCE length
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"world-readable", good, 0o644},
		{"corrupt PKCS#8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: corrupt}), 0o600},
		{"truncated", good[:len(good)/2], 0o600},
		{"PKCS#8 labelled PKCS#1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600},
		{"unknown block type", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600},
		{"block type holding the key", pem.EncodeToMemory(&pem.Block{Type: strings.Repeat("K", 8) + string(good[40:60]), Bytes: der}), 0o600},
		{"small RSA", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}), 0o600},
		{"bare base64", []byte(strings.Join(strings.Split(string(good), "\n")[1:4], "\n")), 0o600},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".pem")
		if err := os.WriteFile(path, c.data, c.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, c.mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKey(path)
		if err == nil {
			t.Errorf("%s: loaded", c.name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, path) {
			t.Errorf("%s: error %q does not name the file", c.name, msg)
		}
		// No run of 12 characters of the key's base64 text (any line of
		// the file) may appear in the error.
		for _, line := range strings.Split(string(c.data), "\n") {
			if strings.HasPrefix(line, "-----") {
				continue
			}
			for i := 0; i+12 <= len(line); i += 4 {
				if strings.Contains(msg, line[i:i+12]) {
					t.Fatalf("%s: error holds key material %q: %s", c.name, line[i:i+12], msg)
				}
			}
		}
	}
}
