package dmarcreport

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"time"
)

// Namespace is the XML namespace of RFC 9990 reports.
const Namespace = "urn:ietf:params:xml:ns:dmarc-2.0"

// Meta is the report generator metadata (RFC 9990 §2.1.1
// "report_metadata") that comes from configuration.
type Meta struct {
	OrgName          string // org_name
	Email            string // email, also the report's From
	ExtraContactInfo string // extra_contact_info, optional
	Generator        string // generator, e.g. "authmilter 1.2.0"
}

// CountedRow is a Row and the number of messages it stands for.
type CountedRow struct {
	Row
	Count int64
}

// Report is one aggregate report: one policy domain, one period (RFC 9990
// §2.1: "Each report MUST contain data for only one DMARC Policy Domain").
type Report struct {
	Meta
	ReportID   string
	Begin, End time.Time // the period, End inclusive (date_range)
	Error      string    // error element, optional
	Policy     Policy
	Rows       []CountedRow
}

// XML element structure, in the order RFC 9990 requires.
type xmlFeedback struct {
	XMLName  xml.Name    `xml:"urn:ietf:params:xml:ns:dmarc-2.0 feedback"`
	Version  string      `xml:"version"`
	Metadata xmlMetadata `xml:"report_metadata"`
	Policy   xmlPolicy   `xml:"policy_published"`
	Records  []xmlRecord `xml:"record"`
}

type xmlMetadata struct {
	OrgName   string   `xml:"org_name"`
	Email     string   `xml:"email"`
	Extra     string   `xml:"extra_contact_info,omitempty"`
	ReportID  string   `xml:"report_id"`
	DateRange xmlRange `xml:"date_range"`
	Error     string   `xml:"error,omitempty"`
	Generator string   `xml:"generator,omitempty"`
}

type xmlRange struct {
	Begin int64 `xml:"begin"`
	End   int64 `xml:"end"`
}

type xmlPolicy struct {
	Domain    string `xml:"domain"`
	P         string `xml:"p"`
	SP        string `xml:"sp,omitempty"`
	NP        string `xml:"np,omitempty"`
	ADKIM     string `xml:"adkim,omitempty"`
	ASPF      string `xml:"aspf,omitempty"`
	Discovery string `xml:"discovery_method,omitempty"`
	FO        string `xml:"fo,omitempty"`
	Testing   string `xml:"testing,omitempty"`
}

type xmlRecord struct {
	Row         xmlRow         `xml:"row"`
	Identifiers xmlIdentifiers `xml:"identifiers"`
	AuthResults xmlAuthResults `xml:"auth_results"`
}

type xmlRow struct {
	SourceIP string       `xml:"source_ip"`
	Count    int64        `xml:"count"`
	Policy   xmlEvaluated `xml:"policy_evaluated"`
}

type xmlEvaluated struct {
	Disposition string      `xml:"disposition"`
	DKIM        string      `xml:"dkim"`
	SPF         string      `xml:"spf"`
	Reasons     []xmlReason `xml:"reason"`
}

type xmlReason struct {
	Type    string `xml:"type"`
	Comment string `xml:"comment,omitempty"`
}

type xmlIdentifiers struct {
	HeaderFrom   string  `xml:"header_from"`
	EnvelopeFrom *string `xml:"envelope_from"`
	EnvelopeTo   string  `xml:"envelope_to,omitempty"`
}

type xmlAuthResults struct {
	DKIM []xmlDKIM `xml:"dkim"`
	SPF  *xmlSPF   `xml:"spf"`
}

type xmlDKIM struct {
	Domain   string `xml:"domain"`
	Selector string `xml:"selector"`
	Result   string `xml:"result"`
	Human    string `xml:"human_result,omitempty"`
}

type xmlSPF struct {
	Domain string `xml:"domain"`
	Scope  string `xml:"scope"`
	Result string `xml:"result"`
	Human  string `xml:"human_result,omitempty"`
}

// XML returns the report as an RFC 9990 XML document. A report needs at
// least one row (RFC 9990 §2.1.1: "There MUST be at least one record").
func (r *Report) XML() ([]byte, error) {
	if len(r.Rows) == 0 {
		return nil, fmt.Errorf("dmarcreport: report %s for %s has no rows", r.ReportID, r.Policy.Domain)
	}
	if r.OrgName == "" || r.Email == "" {
		return nil, fmt.Errorf("dmarcreport: report %s for %s: org_name and email are required", r.ReportID, r.Policy.Domain)
	}
	f := xmlFeedback{
		Version: "1.0",
		Metadata: xmlMetadata{
			OrgName:   r.OrgName,
			Email:     r.Email,
			Extra:     r.ExtraContactInfo,
			ReportID:  r.ReportID,
			DateRange: xmlRange{r.Begin.Unix(), r.End.Unix()},
			Error:     r.Error,
			Generator: r.Generator,
		},
		Policy: xmlPolicy{
			Domain: r.Policy.Domain, P: r.Policy.P, SP: r.Policy.SP, NP: r.Policy.NP,
			ADKIM: r.Policy.ADKIM, ASPF: r.Policy.ASPF, Discovery: r.Policy.Discovery,
			FO: r.Policy.FO, Testing: r.Policy.Testing,
		},
	}
	for _, cr := range r.Rows {
		rec := xmlRecord{
			Row: xmlRow{
				SourceIP: cr.SourceIP,
				Count:    cr.Count,
				Policy: xmlEvaluated{
					Disposition: string(cr.Disposition),
					DKIM:        string(cr.DKIM),
					SPF:         string(cr.SPF),
				},
			},
			// RFC 9990 §2.1.1 "identifiers": envelope_from MAY be
			// present but empty for the null reverse-path.
			Identifiers: xmlIdentifiers{HeaderFrom: cr.HeaderFrom, EnvelopeFrom: &cr.EnvelopeFrom, EnvelopeTo: cr.EnvelopeTo},
		}
		for _, rs := range cr.Reasons {
			rec.Row.Policy.Reasons = append(rec.Row.Policy.Reasons, xmlReason{string(rs.Type), rs.Comment})
		}
		for _, d := range cr.DKIMResults {
			rec.AuthResults.DKIM = append(rec.AuthResults.DKIM, xmlDKIM{d.Domain, d.Selector, d.Result, d.HumanResult})
		}
		if s := cr.SPFResult; s != nil {
			rec.AuthResults.SPF = &xmlSPF{s.Domain, "mfrom", s.Result, s.HumanResult}
		}
		f.Records = append(f.Records, rec)
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("dmarcreport: report %s for %s: %w", r.ReportID, r.Policy.Domain, err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}
