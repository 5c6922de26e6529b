package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/internal/dkimkey"
)

func TestKeygen(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"rsa", "ed25519"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "k.pem")
			var out, errb bytes.Buffer
			code := run([]string{"keygen", "--algorithm", alg, "--domain", "example.com", "--selector", "s1", "--out", path}, &out, &errb)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			st, err := os.Stat(path)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v %v", st, err)
			}
			line := out.String()
			if !strings.HasPrefix(line, "s1._domainkey.example.com. IN TXT (") {
				t.Fatalf("record line %q", line)
			}
			// The printed record, joined, must parse as a valid key.
			var rec strings.Builder
			for i, p := range strings.Split(line, `"`) {
				if i%2 == 1 {
					rec.WriteString(p)
				}
			}
			k, err := dkimkey.Parse(rec.String())
			if err != nil {
				t.Fatalf("published record does not parse: %v", err)
			}
			if k.Type != alg {
				t.Fatalf("key type %s", k.Type)
			}
			// Never overwrite.
			if code := run([]string{"keygen", "--algorithm", alg, "--domain", "example.com", "--selector", "s1", "--out", path}, &out, &errb); code == 0 {
				t.Fatal("overwrote an existing key file")
			}
		})
	}
}

func TestKeygenUsage(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := run([]string{"keygen", "--domain", "example.com"}, &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if code := run([]string{"keygen", "--algorithm", "dsa", "--domain", "d", "--selector", "s"}, &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}

// RFC 8616 §4: a domain given in U-labels is published, named in the key
// file and configured in its A-label form; a name that is no domain is a
// usage error.
func TestKeygenIDN(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "k.pem")
	var out, errb bytes.Buffer
	if code := run([]string{"keygen", "--algorithm", "ed25519", "--domain", "Bücher.example", "--selector", "s1", "--out", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if line := out.String(); !strings.HasPrefix(line, "s1._domainkey.xn--bcher-kva.example. IN TXT (") {
		t.Errorf("record line %q", line)
	}
	if !strings.Contains(errb.String(), "{domain: xn--bcher-kva.example, selector: s1,") {
		t.Errorf("config lines:\n%s", errb.String())
	}
	for _, bad := range [][]string{{"--domain", "a b.example", "--selector", "s1"}, {"--domain", "example.com", "--selector", "s;1"}} {
		args := append([]string{"keygen", "--out", filepath.Join(dir, "x.pem")}, bad...)
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}
