// Package interop finds the real third-party implementations (dkimpy,
// Mail::DKIM, OpenDKIM, Postfix, …) that interoperability tests run against.
package interop

import (
	"os"
	"os/exec"
	"testing"
)

// EnvRequire, when set to 1, turns a missing peer into a test failure
// instead of a skip. CI sets it after installing the peers.
const EnvRequire = "AUTHMILTER_REQUIRE_INTEROP"

// Python is Debian's interpreter, which sees python3-dkim; a python3 earlier
// on PATH (pyenv, a virtualenv) usually does not.
const Python = "/usr/bin/python3"

// Need returns the absolute path of the executable, or skips the test (fails
// when EnvRequire is set) naming the Debian package that provides it.
func Need(t testing.TB, executable, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(executable)
	if err != nil {
		missing(t, executable+" not found (install Debian package "+debianPackage+")")
	}
	return path
}

// NeedPythonModule checks that Debian's python3 can import module, and
// returns the interpreter's path.
func NeedPythonModule(t testing.TB, module, debianPackage string) string {
	t.Helper()
	if err := exec.Command(Python, "-c", "import "+module).Run(); err != nil {
		missing(t, Python+" cannot import "+module+" (install Debian package "+debianPackage+")")
	}
	return Python
}

// NeedPerlModule checks that perl can load module (e.g. "Mail::DKIM::Signer").
func NeedPerlModule(t testing.TB, module, debianPackage string) string {
	t.Helper()
	perl := Need(t, "perl", "perl")
	if err := exec.Command(perl, "-M"+module, "-e", "1").Run(); err != nil {
		missing(t, "perl cannot load "+module+" (install Debian package "+debianPackage+")")
	}
	return perl
}

func missing(t testing.TB, msg string) {
	t.Helper()
	msg = "INTEROP PEER MISSING: " + msg
	if os.Getenv(EnvRequire) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
