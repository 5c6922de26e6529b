package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenSealer: benchmail passes --arc-sealer to the generator, says which
// sealer it used, and refuses an unknown one.
func TestGenSealer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out bytes.Buffer
	err := genMain([]string{"-o", dir, "--arc-sealer", "openarc", "--classes", "arc-1hop", "--sizes", "2KB", "--per-class", "1"}, &out)
	if err == nil || !strings.Contains(err.Error(), `"openarc"`) {
		t.Fatalf("--arc-sealer openarc: err = %v", err)
	}
	out.Reset()
	if err := genMain([]string{"-o", dir, "--arc-sealer", "authmilter", "--classes", "arc-1hop", "--sizes", "2KB", "--per-class", "1"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ARC sealed by authmilter") {
		t.Errorf("output %q does not name the sealer", out.String())
	}
	data, err := os.ReadFile(filepath.Join(dir, "arc-1hop.2KB.000.eml"))
	if err != nil {
		t.Fatal(err)
	}
	// Ours, not dkimpy's (which writes "h=from : to").
	if !bytes.HasPrefix(data, []byte("ARC-Seal: ")) || bytes.Contains(data, []byte("h=from : to")) {
		t.Errorf("arc-1hop is not sealed by our sealer:\n%s", data[:min(len(data), 600)])
	}
}
