package benchmail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDkimpyTimeout: an interpreter that never answers is killed after
// dkimpyTimeout and Generate fails saying so, instead of hanging.
func TestDkimpyTimeout(t *testing.T) {
	old := dkimpyTimeout
	dkimpyTimeout = 300 * time.Millisecond
	defer func() { dkimpyTimeout = old }()
	mute := filepath.Join(t.TempDir(), "python3")
	if err := os.WriteFile(mute, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := Generate(Options{Seed: 3, PerClass: 1, Sizes: Sizes[:1], Classes: []Class{ARC1Hop}, Python: mute})
	if err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestDkimpyDies: an interpreter that exits at once has its stderr in the
// error.
func TestDkimpyDies(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "python3")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'no module named dkim, says the fake' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Generate(Options{Seed: 3, PerClass: 1, Sizes: Sizes[:1], Classes: []Class{ARC1Hop}, Python: broken})
	if err == nil || !strings.Contains(err.Error(), "says the fake") || !strings.Contains(err.Error(), "python3-dkim") {
		t.Fatalf("err = %v, want the interpreter's stderr and what to install", err)
	}
}
