package dmarcreport

import (
	"bytes"
	"flag"
	"github.com/authmilter/authmilter/internal/testsupport/conformance"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/internal/testsupport/interop"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// sampleReports are the reports the golden files and the schema check
// cover: the full set of optional elements, and the bare minimum.
func sampleReports() map[string]*Report {
	begin := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	meta := Meta{OrgName: "Example Receiver", Email: "dmarc-reports@receiver.example", ExtraContactInfo: "https://receiver.example/dmarc", Generator: "authmilter test"}
	full := &Report{
		Meta:     meta,
		ReportID: ReportID("example.com", begin, 1, 1, "receiver.example"),
		Begin:    begin, End: begin.Add(24*time.Hour - time.Second),
		Policy: Policy{Domain: "example.com", P: "reject", SP: "quarantine", NP: "reject", ADKIM: "s", ASPF: "r",
			Discovery: "treewalk", FO: "1", Testing: "n", RUA: []string{"mailto:dmarc@example.com"}},
		Rows: []CountedRow{
			{Count: 12, Row: Row{
				SourceIP: "192.0.2.10", Disposition: DispositionPass, DKIM: AlignedPass, SPF: AlignedPass,
				HeaderFrom: "example.com", EnvelopeFrom: "example.com", EnvelopeTo: "receiver.example",
				DKIMResults: []DKIMResult{{Domain: "example.com", Selector: "s1", Result: "pass"}, {Domain: "esp.example", Selector: "k", Result: "fail", HumanResult: "body hash did not verify"}},
				SPFResult:   &SPFResult{Domain: "example.com", Result: "pass"},
			}},
			{Count: 3, Row: Row{
				SourceIP: "2001:db8::25", Disposition: DispositionNone, DKIM: AlignedFail, SPF: AlignedFail,
				Reasons:    []Reason{{Type: ReasonTrustedForwarder, Comment: "ARC sealer lists.example.org reported dmarc=pass"}, {Type: ReasonLocalPolicy}},
				HeaderFrom: "news.example.com", EnvelopeFrom: "",
				SPFResult: &SPFResult{Domain: "mx.forwarder.example", Result: "softfail", HumanResult: "helo identity"},
			}},
		},
	}
	minimal := &Report{
		Meta:     Meta{OrgName: "Example Receiver", Email: "dmarc-reports@receiver.example"},
		ReportID: ReportID("example.org", begin, 2, 3, "receiver.example"),
		Begin:    begin, End: begin.Add(time.Hour - time.Second),
		Error:  "several DMARC records at _dmarc.sub.example.org; all discarded",
		Policy: Policy{Domain: "example.org", P: "none"},
		Rows: []CountedRow{{Count: 1, Row: Row{
			SourceIP: "198.51.100.7", Disposition: DispositionNone, DKIM: AlignedFail, SPF: AlignedFail,
			HeaderFrom: "example.org", EnvelopeFrom: "bounce.example.net",
		}}},
	}
	return map[string]*Report{"full": full, "minimal": minimal}
}

func TestGolden(t *testing.T) {
	for name, r := range sampleReports() {
		t.Run(name, func(t *testing.T) {
			got, err := r.XML()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".xml.golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file:\n%s", path, got)
			}
		})
	}
}

// validate checks a document against RFC 9990's schema with xmllint.
func validate(t *testing.T, doc []byte) {
	t.Helper()
	xmllint := interop.Need(t, "xmllint", "libxml2-utils")
	f := filepath.Join(t.TempDir(), "report.xml")
	if err := os.WriteFile(f, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(xmllint, "--noout", "--schema", conformance.Reference(t, "dmarc-aggregate-reporting/dmarc-xml-0.2.xsd"), f).CombinedOutput()
	if err != nil {
		t.Fatalf("xmllint --schema: %v\n%s\n%s", err, out, doc)
	}
}

func TestSchema(t *testing.T) {
	for name, r := range sampleReports() {
		t.Run(name, func(t *testing.T) {
			doc, err := r.XML()
			if err != nil {
				t.Fatal(err)
			}
			validate(t, doc)
		})
	}
}

// TestSchemaRejects makes sure the schema check can fail: a document
// with an element out of order does not validate.
func TestSchemaRejects(t *testing.T) {
	xmllint := interop.Need(t, "xmllint", "libxml2-utils")
	doc, err := sampleReports()["minimal"].XML()
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(doc, []byte("<dkim>fail</dkim>"), []byte("<dkim>maybe</dkim>"), 1)
	f := filepath.Join(t.TempDir(), "bad.xml")
	if err := os.WriteFile(f, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(xmllint, "--noout", "--schema", conformance.Reference(t, "dmarc-aggregate-reporting/dmarc-xml-0.2.xsd"), f).CombinedOutput(); err == nil {
		t.Fatalf("xmllint accepted an invalid dkim value:\n%s", out)
	}
}

func TestXMLNeedsRows(t *testing.T) {
	r := sampleReports()["minimal"]
	r.Rows = nil
	if _, err := r.XML(); err == nil || !strings.Contains(err.Error(), "no rows") {
		t.Fatalf("XML of a report without rows: %v", err)
	}
}
