package dmarcreport

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// ReportID returns the Report-ID of the part-th of parts reports for
// domain and the period starting at begin, sent by submitter (RFC 9990
// §2.5.1 "Definition of Report-ID": dot-atom-text "@" dot-atom-text, unique
// among reports to the same domain). It depends on nothing else, so a
// report sent again after a crash carries the same Report-ID (§2.5.4
// "Handling of Duplicates").
func ReportID(domain string, begin time.Time, part, parts int, submitter string) string {
	id := strconv.FormatInt(begin.Unix(), 10) + "." + domain
	if parts > 1 {
		id = strconv.FormatInt(begin.Unix(), 10) + "." + strconv.Itoa(part) + "." + domain
	}
	return id + "@" + submitter
}

// uniqueID is the filename's unique-id (1*(ALPHA / DIGIT)) for the
// part-th of several reports of one period; a lone report has none.
func uniqueID(begin time.Time, part, parts int) string {
	if parts <= 1 {
		return ""
	}
	return strconv.FormatInt(begin.Unix(), 10) + "p" + strconv.Itoa(part)
}

// Filename returns the attachment's name (RFC 9990 §2.5.2 "Email"):
// receiver!policy-domain!begin!end[!unique-id].xml.gz. part and parts are
// as for ReportID.
func (r *Report) Filename(receiver string, part, parts int) string {
	name := receiver + "!" + r.Policy.Domain + "!" + strconv.FormatInt(r.Begin.Unix(), 10) + "!" + strconv.FormatInt(r.End.Unix(), 10)
	if u := uniqueID(r.Begin, part, parts); u != "" {
		name += "!" + u
	}
	return name + ".xml.gz"
}

// Subject returns the Subject field's value (RFC 9990 §2.5.2 "Email",
// dmarc-subject): "Report Domain: <policy domain> Submitter: <receiver>
// Report-ID: <<id>>".
func (r *Report) Subject(receiver string) string {
	return "Report Domain: " + r.Policy.Domain + " Submitter: " + receiver + " Report-ID: <" + r.ReportID + ">"
}

// Gzip returns the report's XML compressed with gzip (RFC 1952), as RFC
// 9990 §2.5.2 recommends.
func (r *Report) Gzip() ([]byte, error) {
	x, err := r.XML()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Name = "" // the attachment carries the name
	if _, err := zw.Write(x); err != nil {
		return nil, fmt.Errorf("dmarcreport: gzip report %s: %w", r.ReportID, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("dmarcreport: gzip report %s: %w", r.ReportID, err)
	}
	return buf.Bytes(), nil
}

// MessageOptions say who sends a report to whom.
type MessageOptions struct {
	Receiver string    // the reporting domain: filename and Subject "Submitter"
	To       []string  // the addresses of the mailto: URIs
	Date     time.Time // the Date field
	Part     int       // 1-based, when a period's rows are split into several reports
	Parts    int
	boundary string // tests fix the MIME boundary
}

// Message returns the report as an RFC 5322 message in MIME (RFC 2045):
// multipart/mixed with a short text/plain part and the gzip-compressed XML
// as application/gzip with the filename of RFC 9990 §2.5.2. The
// Message-ID is the Report-ID, so a resent report is recognisably the same
// (§2.5.2 allows this).
func (r *Report) Message(o MessageOptions) ([]byte, error) {
	if len(o.To) == 0 {
		return nil, fmt.Errorf("dmarcreport: report %s: no recipient", r.ReportID)
	}
	gz, err := r.Gzip()
	if err != nil {
		return nil, err
	}
	parts := max(o.Parts, 1)
	part := max(o.Part, 1)
	filename := r.Filename(o.Receiver, part, parts)

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if o.boundary != "" {
		if err := mw.SetBoundary(o.boundary); err != nil {
			return nil, fmt.Errorf("dmarcreport: boundary: %w", err)
		}
	}
	tw, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {"text/plain; charset=us-ascii"},
		"Content-Transfer-Encoding": {"7bit"},
	})
	if err != nil {
		return nil, fmt.Errorf("dmarcreport: report %s: %w", r.ReportID, err)
	}
	fmt.Fprintf(tw, "This is a DMARC aggregate report (RFC 9990) from %s for %s,\r\n", o.Receiver, r.Policy.Domain)
	fmt.Fprintf(tw, "covering %s to %s UTC.\r\n", r.Begin.UTC().Format(time.DateTime), r.End.UTC().Format(time.DateTime))
	if parts > 1 {
		fmt.Fprintf(tw, "This is part %d of %d of the reports for that period.\r\n", part, parts)
	}
	fmt.Fprintf(tw, "Report-ID: <%s>\r\n", r.ReportID)
	aw, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {mime.FormatMediaType("application/gzip", map[string]string{"name": filename})},
		"Content-Transfer-Encoding": {"base64"},
		"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": filename})},
	})
	if err != nil {
		return nil, fmt.Errorf("dmarcreport: report %s: %w", r.ReportID, err)
	}
	enc := base64.StdEncoding.EncodeToString(gz)
	for len(enc) > 76 {
		aw.Write([]byte(enc[:76] + "\r\n"))
		enc = enc[76:]
	}
	aw.Write([]byte(enc + "\r\n"))
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("dmarcreport: report %s: %w", r.ReportID, err)
	}

	var msg bytes.Buffer
	h := func(name, value string) { msg.WriteString(name + ": " + value + "\r\n") }
	h("From", r.Email)
	h("To", strings.Join(o.To, ", "))
	// RFC 9990 §2.5.2: the Subject, folded at its FWS as RFC 5322 allows.
	h("Subject", "Report Domain: "+r.Policy.Domain+"\r\n Submitter: "+o.Receiver+"\r\n Report-ID: <"+r.ReportID+">")
	h("Date", o.Date.Format(time.RFC1123Z))
	h("Message-ID", "<"+r.ReportID+">")
	h("MIME-Version", "1.0")
	h("Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": mw.Boundary()}))
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}
