package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/authmilter/authmilter/internal/testsupport/conformance"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/authmilter/authmilter/dmarcreport"
	"github.com/authmilter/authmilter/dmarcreport/store"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/interop"
	"github.com/authmilter/authmilter/internal/testsupport/syncbuf"
)

// TestServeRecordsReports: with reports enabled, judged messages with a
// DMARC policy are counted in the store, internal ones are not, and
// `report show` prints them as a table, as JSON and as RFC 9990 XML.
func TestServeRecordsReports(t *testing.T) {
	t.Parallel()
	dns := dnstest.Serve(t, &dnstest.Resolver{TXT: map[string][]string{
		"example.com":        {"v=spf1 ip4:192.0.2.0/24 -all"},
		"_dmarc.example.com": {"v=DMARC1; p=reject; rua=mailto:dmarc@example.com"},
		"example.org":        {"v=spf1 -all"},
	}})
	dir := t.TempDir()
	db := filepath.Join(dir, "reports.db")
	path := writeConfig(t, "listen: inet:127.0.0.1:0\nauthserv_id: mx.test\ndns: {servers: [\""+dns+"\"]}\n"+
		"reports:\n  enabled: true\n  store: sqlite:"+db+"\n  org_name: Test Receiver\n  email: dmarc@receiver.test\n")
	logs := &syncbuf.Buffer{}
	ready := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, path, logs, nil, func(a net.Addr) { ready <- a }) }()
	var addr string
	select {
	case a := <-ready:
		addr = a.String()
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	for range 3 {
		milterMessage(t, addr, "192.0.2.1", "a@example.com", "example.com") // pass
	}
	milterMessage(t, addr, "198.51.100.9", "a@example.com", "example.com") // fail: reject
	milterMessage(t, addr, "127.0.0.1", "a@example.com", "example.com")    // internal: not judged
	milterMessage(t, addr, "192.0.2.1", "a@example.org", "example.org")    // no DMARC policy
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "dmarc reports: recording") {
		t.Errorf("no start line:\n%s", logs.String())
	}

	var out, errOut bytes.Buffer
	if code := run([]string{"report", "show", "--config", path, "--open", "--format", "json"}, &out, &errOut); code != 0 {
		t.Fatalf("report show: exit %d: %s", code, errOut.String())
	}
	var shown []shownPeriod
	if err := json.Unmarshal(out.Bytes(), &shown); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(shown) != 1 || shown[0].Domain != "example.com" || shown[0].Messages != 4 || len(shown[0].Rows) != 2 ||
		shown[0].Rows[0].Count != 3 || shown[0].Rows[0].Disposition != dmarcreport.DispositionPass ||
		shown[0].Rows[1].Disposition != dmarcreport.DispositionReject {
		t.Errorf("report show --open --format json:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"report", "show", "--config", path, "--open"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "198.51.100.9") {
		t.Errorf("report show (text): exit %d:\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run([]string{"report", "show", "--config", path}, &out, &errOut); code != 0 || strings.TrimSpace(out.String()) != "no reports" {
		t.Errorf("report show of closed periods (none yet): exit %d:\n%s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"report", "show", "--config", path, "--open", "--format", "xml"}, &out, &errOut); code != 0 {
		t.Fatalf("report show --format xml: exit %d: %s", code, errOut.String())
	}
	xmllintValid(t, out.Bytes())
}

// xmllintValid checks one report document against RFC 9990's schema.
func xmllintValid(t *testing.T, doc []byte) {
	t.Helper()
	xmllint := interop.Need(t, "xmllint", "libxml2-utils")
	f := filepath.Join(t.TempDir(), "r.xml")
	os.WriteFile(f, doc, 0o600)
	xsd := conformance.Reference(t, "dmarc-aggregate-reporting/dmarc-xml-0.2.xsd")
	if out, err := exec.Command(xmllint, "--noout", "--schema", xsd, f).CombinedOutput(); err != nil {
		t.Fatalf("xmllint: %v\n%s\n%s", err, out, doc)
	}
}

// sinkBackend is an SMTP server that keeps what it receives.
type sinkBackend struct {
	mu   sync.Mutex
	msgs [][]byte
	rcpt []string
}

func (b *sinkBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{b}, nil }

type sinkSession struct{ b *sinkBackend }

func (s *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.b.mu.Lock()
	s.b.rcpt = append(s.b.rcpt, to)
	s.b.mu.Unlock()
	return nil
}
func (s *sinkSession) Data(r io.Reader) error {
	m, err := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, m)
	s.b.mu.Unlock()
	return err
}
func (s *sinkSession) Reset()        {}
func (s *sinkSession) Logout() error { return nil }

// TestReportSend: `report send` sends a closed period's report to the
// configured relay, once.
func TestReportSend(t *testing.T) {
	t.Parallel()
	be := &sinkBackend{}
	srv := smtp.NewServer(be)
	srv.Domain = "sink.test"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	dir := t.TempDir()
	db := filepath.Join(dir, "reports.db")
	st, err := store.Open(context.Background(), "sqlite:"+db)
	if err != nil {
		t.Fatal(err)
	}
	yesterday := dmarcreport.Period(time.Now().Add(-24*time.Hour), 24*time.Hour)
	rec := dmarcreport.Record{
		Policy: dmarcreport.Policy{Domain: "example.com", P: "reject", RUA: []string{"mailto:dmarc@example.com"}},
		Row: dmarcreport.Row{SourceIP: "192.0.2.1", Disposition: "pass", DKIM: "pass", SPF: "pass",
			HeaderFrom: "example.com", EnvelopeFrom: "example.com"},
	}
	rec.Normalize()
	if err := st.Add(context.Background(), []store.Count{{Begin: yesterday, End: yesterday.Add(24*time.Hour - time.Second), Policy: rec.Policy, Row: rec.Row.Key(), N: 7}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	// DNS is not needed: the destination is inside the policy domain.
	path := writeConfig(t, "dns: {servers: [\"127.0.0.1:1\"], timeout: 100ms, attempts: 1}\n"+
		"reports:\n  store: sqlite:"+db+"\n  org_name: Test Receiver\n  email: dmarc@receiver.test\n"+
		"  smtp: {address: \""+l.Addr().String()+"\", mail_from: bounces@receiver.test}\n")
	var out, errOut bytes.Buffer
	if code := run([]string{"report", "send", "--config", path}, &out, &errOut); code != 0 {
		t.Fatalf("report send: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "1 sent, 0 failed") {
		t.Errorf("report send printed %q", out.String())
	}
	out.Reset()
	if code := run([]string{"report", "send", "--config", path}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "0 sent") {
		t.Errorf("second report send: exit %d %q", code, out.String())
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.msgs) != 1 || len(be.rcpt) != 1 || be.rcpt[0] != "dmarc@example.com" {
		t.Fatalf("%d messages to %v", len(be.msgs), be.rcpt)
	}
	if !bytes.Contains(be.msgs[0], []byte("Subject: Report Domain: example.com")) || !bytes.Contains(be.msgs[0], []byte("application/gzip")) {
		t.Errorf("message:\n%s", be.msgs[0])
	}
}

func TestReportUsage(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	for _, args := range [][]string{{"report"}, {"report", "mail"}, {"report", "show", "--format", "csv"}} {
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	// No store on this host: a clear error, no file created.
	path := writeConfig(t, "reports:\n  store: sqlite:"+filepath.Join(t.TempDir(), "none.db")+"\n")
	errOut.Reset()
	if code := run([]string{"report", "show", "--config", path}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "reports.enabled") {
		t.Errorf("show without a store: exit %d: %s", code, errOut.String())
	}
}
