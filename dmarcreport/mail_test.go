package dmarcreport

import (
	"bytes"
	"compress/gzip"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"
)

// RFC 9990 §2.5.2: filename = receiver "!" policy-domain "!" begin "!" end
// [ "!" unique-id ] "." extension.
var filenameRE = regexp.MustCompile(`^[a-z0-9.-]+![a-z0-9.-]+![0-9]+![0-9]+(![A-Za-z0-9]+)?\.xml\.gz$`)

// RFC 9990 §2.5.2 dmarc-subject, after unfolding.
var subjectRE = regexp.MustCompile(`^Report +Domain: +[a-z0-9.-]+ +Submitter: +[a-z0-9.-]+ +Report-ID: +<[!#-'*+/-9=?A-Z^-~.-]+@[!#-'*+/-9=?A-Z^-~.-]+>$`)

func TestFilenameAndSubject(t *testing.T) {
	r := sampleReports()["full"]
	if got, want := r.Filename("receiver.example", 1, 1), "receiver.example!example.com!1796342400!1796428799.xml.gz"; got != want {
		t.Errorf("Filename = %q, want %q", got, want)
	}
	if got := r.Filename("receiver.example", 2, 3); got != "receiver.example!example.com!1796342400!1796428799!1796342400p2.xml.gz" || !filenameRE.MatchString(got) {
		t.Errorf("Filename of part 2 = %q", got)
	}
	if s := r.Subject("receiver.example"); !subjectRE.MatchString(s) {
		t.Errorf("Subject %q does not match RFC 9990's dmarc-subject", s)
	}
}

func TestReportIDStable(t *testing.T) {
	begin := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	a := ReportID("example.com", begin, 1, 1, "receiver.example")
	b := ReportID("example.com", begin.In(time.FixedZone("x", 3600)), 1, 1, "receiver.example")
	if a != b || a != "1796342400.example.com@receiver.example" {
		t.Errorf("ReportID = %q and %q", a, b)
	}
	if p := ReportID("example.com", begin, 2, 2, "receiver.example"); p == a {
		t.Errorf("part 2 has the Report-ID of a lone report: %q", p)
	}
}

func TestMessage(t *testing.T) {
	r := sampleReports()["full"]
	date := time.Date(2026, 12, 5, 0, 10, 0, 0, time.UTC)
	raw, err := r.Message(MessageOptions{Receiver: "receiver.example", To: []string{"dmarc@example.com"}, Date: date})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subj := strings.Join(strings.Fields(msg.Header.Get("Subject")), " ")
	if !subjectRE.MatchString(subj) || !strings.Contains(subj, r.ReportID) {
		t.Errorf("Subject = %q", msg.Header.Get("Subject"))
	}
	if got := msg.Header.Get("Message-Id"); got != "<"+r.ReportID+">" {
		t.Errorf("Message-ID = %q", got)
	}
	if got := msg.Header.Get("From"); got != r.Email {
		t.Errorf("From = %q", got)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var sawText, sawReport bool
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			b, _ := io.ReadAll(p)
			sawText = strings.Contains(string(b), "example.com")
		case "application/gzip":
			if fn := p.FileName(); fn != r.Filename("receiver.example", 1, 1) {
				t.Errorf("attachment filename %q", fn)
			}
			// multipart.Reader does not undo base64 for us.
			dec := base64Reader(p)
			zr, err := gzip.NewReader(dec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := r.XML()
			if !bytes.Equal(got, want) {
				t.Errorf("attachment is not the report's XML:\n%s", got)
			}
			validate(t, got)
			sawReport = true
		}
	}
	if !sawText || !sawReport {
		t.Errorf("text part %v, report part %v", sawText, sawReport)
	}
}

func TestMessageNeedsRecipient(t *testing.T) {
	if _, err := sampleReports()["full"].Message(MessageOptions{Receiver: "r.example"}); err == nil {
		t.Fatal("a message without recipients was built")
	}
}
