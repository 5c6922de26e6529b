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
