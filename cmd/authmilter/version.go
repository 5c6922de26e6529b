package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// version, commit and modified, when set at link time, override the module
// version, vcs.revision and vcs.modified the Go toolchain records. The
// Debian package sets them (packaging/deb/build):
//
//	go build -ldflags "-X main.version=0.1.0-1 -X main.commit=0123abcd -X main.modified=true" ./cmd/authmilter
//
// The toolchain records no VCS information when it builds outside a git
// clone (a source tarball) or in a git worktree (where .git is a file), so
// the commit is passed explicitly there.
var version, commit, modified string

// buildVersion is what `authmilter version` reports about the binary.
type buildVersion struct {
	Version  string // -X main.version, else the module version (a tag or a pseudo-version), else "(devel)"
	Revision string // vcs.revision: the commit built, when known
	Time     string // vcs.time: that commit's time
	Modified bool   // vcs.modified: the checkout had uncommitted changes
	Go       string // the toolchain, e.g. go1.26.8
	Platform string // GOOS/GOARCH
}

// readVersion assembles the version from the link-time overrides and the
// build information the toolchain embeds (nil when there is none).
func readVersion(override, overrideCommit, overrideModified string, info *debug.BuildInfo) buildVersion {
	v := buildVersion{
		Version:  override,
		Revision: overrideCommit,
		Modified: overrideModified == "true",
		Go:       runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	if info != nil {
		if info.GoVersion != "" {
			v.Go = info.GoVersion
		}
		if v.Version == "" {
			v.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if overrideCommit == "" {
					v.Revision = s.Value
				}
			case "vcs.time":
				if overrideCommit == "" {
					v.Time = s.Value
				}
			case "vcs.modified":
				if overrideCommit == "" {
					v.Modified = s.Value == "true"
				}
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	return v
}

// String is the one line `authmilter version` prints, e.g.
//
//	authmilter 0.1.0-1 (commit 0123456789ab 2026-12-05T20:00:00Z, go1.26.8 linux/amd64)
func (v buildVersion) String() string {
	var parts []string
	if v.Revision != "" {
		rev := v.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		c := "commit " + rev
		if v.Time != "" {
			c += " " + v.Time
		}
		if v.Modified {
			c += " modified"
		}
		parts = append(parts, c)
	}
	parts = append(parts, v.Go+" "+v.Platform)
	return "authmilter " + v.Version + " (" + strings.Join(parts, ", ") + ")"
}

// runVersion implements `authmilter version` (and `authmilter --version`).
func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("version: unexpected argument %q", fs.Arg(0))}
	}
	info, _ := debug.ReadBuildInfo()
	_, err := fmt.Fprintln(stdout, readVersion(version, commit, modified, info))
	return err
}
