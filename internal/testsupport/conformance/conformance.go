// Package conformance locates the third-party test suites that tests run
// against (../shared/conformance beside the repository, or
// $AUTHMILTER_CONFORMANCE_DIR).
package conformance

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// EnvDir names the environment variable that overrides the suite location.
const EnvDir = "AUTHMILTER_CONFORMANCE_DIR"

// EnvRequire, when set to 1, turns a missing suite into a test failure
// instead of a skip. CI sets it.
const EnvRequire = "AUTHMILTER_REQUIRE_CONFORMANCE"

// Dir returns the directory of the named suite (e.g. "spf"). When it is
// absent the test is skipped with a loud message, or fails if EnvRequire is
// set.
func Dir(t testing.TB, suite string) string {
	t.Helper()
	base := os.Getenv(EnvDir)
	if base == "" {
		_, file, _, _ := runtime.Caller(0)
		// internal/testsupport/conformance/conformance.go → repository root → ../shared/conformance
		base = filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "shared", "conformance")
	}
	dir := filepath.Join(base, suite)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		msg := "CONFORMANCE SUITE MISSING: " + dir + " not found (set " + EnvDir + "); skipping"
		if os.Getenv(EnvRequire) == "1" {
			t.Fatal(msg)
		}
		t.Log("**********************************************************************")
		t.Skip(msg)
	}
	return dir
}

// Reference returns the path of a reference file of the standards the
// project implements (e.g. "dmarc-aggregate-reporting/dmarc-xml-0.2.xsd",
// RFC 9990's schema), read from ../shared/reference beside the repository
// (or reference/ beside $AUTHMILTER_CONFORMANCE_DIR), never copied into it.
// When it is absent the test is skipped with a loud message, or fails if
// EnvRequire is set.
func Reference(t testing.TB, name string) string {
	t.Helper()
	base := os.Getenv(EnvDir)
	if base == "" {
		_, file, _, _ := runtime.Caller(0)
		base = filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "shared", "conformance")
	}
	path := filepath.Join(filepath.Dir(base), "reference", filepath.FromSlash(name))
	if _, err := os.Stat(path); err != nil {
		msg := "REFERENCE FILE MISSING: " + path + " not found (set " + EnvDir + " to ../shared/conformance); skipping"
		if os.Getenv(EnvRequire) == "1" {
			t.Fatal(msg)
		}
		t.Log("**********************************************************************")
		t.Skip(msg)
	}
	return path
}
