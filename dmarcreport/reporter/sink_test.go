package reporter

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// sink is an SMTP server on 127.0.0.1 that keeps what it receives.
type sink struct {
	addr string

	mu       sync.Mutex
	msgs     []delivered
	tempFail int    // refuse this many DATA with 451
	user     string // require AUTH PLAIN with user/pass when set
	pass     string
}

type delivered struct {
	from string
	to   []string
	data []byte
	auth string
}

func newSink(t *testing.T, configure func(*smtp.Server)) *sink {
	t.Helper()
	s := &sink{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }))
	srv.Domain = "sink.test"
	srv.AllowInsecureAuth = true
	if configure != nil {
		configure(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return s
}

func (s *sink) received() []delivered {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivered(nil), s.msgs...)
}

type sinkSession struct {
	s    *sink
	cur  delivered
	auth string
}

func (ss *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *sinkSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != ss.s.user || pass != ss.s.pass {
			return errors.New("bad credentials")
		}
		ss.auth = user
		return nil
	}), nil
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && ss.auth == "" {
		return &smtp.SMTPError{Code: 530, Message: "authentication required"}
	}
	ss.cur = delivered{from: from, auth: ss.auth}
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "nobody@") {
		return &smtp.SMTPError{Code: 550, Message: "no such user"}
	}
	ss.cur.to = append(ss.cur.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.tempFail > 0 {
		ss.s.tempFail--
		return &smtp.SMTPError{Code: 451, Message: "try again later"}
	}
	ss.cur.data = b
	ss.s.msgs = append(ss.s.msgs, ss.cur)
	return nil
}

func (ss *sinkSession) Reset()        {}
func (ss *sinkSession) Logout() error { return nil }

// feedback is the part of a report the tests check.
type feedback struct {
	XMLName  xml.Name `xml:"urn:ietf:params:xml:ns:dmarc-2.0 feedback"`
	ReportID string   `xml:"report_metadata>report_id"`
	Begin    int64    `xml:"report_metadata>date_range>begin"`
	Domain   string   `xml:"policy_published>domain"`
	Records  []struct {
		IP    string `xml:"row>source_ip"`
		Count int64  `xml:"row>count"`
	} `xml:"record"`
}

func (f feedback) total() int64 {
	var n int64
	for _, r := range f.Records {
		n += r.Count
	}
	return n
}

// unpack finds the report in a message: its Subject, attachment name and
// parsed XML.
func unpack(t *testing.T, raw []byte) (subject, filename string, doc []byte, fb feedback) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject = strings.Join(strings.Fields(msg.Header.Get("Subject")), " ")
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct != "application/gzip" {
			continue
		}
		filename = p.FileName()
		zr, err := gzip.NewReader(base64.NewDecoder(base64.StdEncoding, p))
		if err != nil {
			t.Fatal(err)
		}
		doc, err = io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if err := xml.Unmarshal(doc, &fb); err != nil {
			t.Fatalf("report XML: %v\n%s", err, doc)
		}
	}
	if doc == nil {
		t.Fatalf("no application/gzip part in\n%s", raw)
	}
	return subject, filename, doc, fb
}
