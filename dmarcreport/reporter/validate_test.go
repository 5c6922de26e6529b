package reporter

import (
	"github.com/authmilter/authmilter/internal/testsupport/conformance"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/authmilter/authmilter/internal/testsupport/interop"
)

// validateXML checks a report against RFC 9990's schema with xmllint.
func validateXML(t *testing.T, doc []byte) {
	t.Helper()
	xmllint := interop.Need(t, "xmllint", "libxml2-utils")
	f := filepath.Join(t.TempDir(), "report.xml")
	if err := os.WriteFile(f, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(xmllint, "--noout", "--schema", conformance.Reference(t, "dmarc-aggregate-reporting/dmarc-xml-0.2.xsd"), f).CombinedOutput(); err != nil {
		t.Fatalf("xmllint --schema: %v\n%s\n%s", err, out, doc)
	}
}
