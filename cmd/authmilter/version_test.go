package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestReadVersion(t *testing.T) {
	t.Parallel()
	info := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/authmilter/authmilter", Version: "v0.0.0-20261205200000-0123456789ab"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-05T20:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	plat := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name                      string
		version, commit, modified string
		info                      *debug.BuildInfo
		want                      string
	}{
		{"module version and vcs", "", "", "", info,
			"authmilter v0.0.0-20261205200000-0123456789ab (commit 0123456789ab 2026-12-05T20:00:00Z modified, go1.26.8 " + plat + ")"},
		{"ldflags version", "0.1.0-1", "", "", info,
			"authmilter 0.1.0-1 (commit 0123456789ab 2026-12-05T20:00:00Z modified, go1.26.8 " + plat + ")"},
		{"ldflags commit wins over vcs", "0.1.0-1", "fedcba9876543210", "", info,
			"authmilter 0.1.0-1 (commit fedcba987654, go1.26.8 " + plat + ")"},
		{"ldflags modified", "0.1.0-1", "fedcba98", "true", info,
			"authmilter 0.1.0-1 (commit fedcba98 modified, go1.26.8 " + plat + ")"},
		{"devel, no vcs", "", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"authmilter (devel) (go1.26.8 " + plat + ")"},
		{"no build info", "", "", "", nil,
			"authmilter (devel) (" + runtime.Version() + " " + plat + ")"},
	} {
		if got := readVersion(tc.version, tc.commit, tc.modified, tc.info).String(); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}, {"-V"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		line := out.String()
		if !strings.HasPrefix(line, "authmilter ") || !strings.Contains(line, runtime.Version()) || strings.Count(line, "\n") != 1 {
			t.Errorf("%v: %q", args, line)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"version", "extra"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unexpected argument "extra"`) {
		t.Errorf("version extra: exit %d, stderr %q", code, errb.String())
	}
	if code := run([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "authmilter version") {
		t.Errorf("usage does not name the version command: %q", errb.String())
	}
}

// TestVersionLdflags builds the binary as packaging/build-deb does and
// checks that the link-time values are what it prints.
func TestVersionLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "authmilter")
	ld := "-X main.version=9.8.7-1 -X main.commit=0123456789abcdef0123 -X main.modified=true"
	if out, err := exec.Command("go", "build", "-ldflags", ld, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^authmilter 9\.8\.7-1 \(commit 0123456789ab modified, go\S+ \S+/\S+\)\n$`)
	if !want.Match(out) {
		t.Errorf("--version printed %q, want %s", out, want)
	}
}
