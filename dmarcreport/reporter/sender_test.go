package reporter

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dmarcreport"
	"github.com/authmilter/authmilter/dmarcreport/store"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/emersion/go-smtp"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var meta = dmarcreport.Meta{OrgName: "Receiver Test", Email: "dmarc-reports@receiver.example", Generator: "authmilter test"}

func resolver() *dnstest.Resolver {
	return &dnstest.Resolver{TXT: map[string][]string{
		// reports.example.net accepts reports for example.org only.
		"example.org._report._dmarc.reports.example.net": {"v=DMARC1"},
		// relay.example overrides the address, keeping its host.
		"example.info._report._dmarc.relay.example": {"v=DMARC1; rua=mailto:inbox@relay.example"},
		// evil.example tries to redirect to another host.
		"example.biz._report._dmarc.evil.example": {"v=DMARC1; rua=mailto:victim@victim.example"},
	}}
}

func newSender(t *testing.T, st *store.Store, sk *sink, c *clock, mod func(*SenderOptions)) *Sender {
	t.Helper()
	o := SenderOptions{Meta: meta, SMTP: SMTPOptions{Address: sk.addr, MailFrom: "bounces@receiver.example", Timeout: 10 * time.Second},
		Resolver: resolver(), Now: c.now, Backoff: time.Minute}
	if mod != nil {
		mod(&o)
	}
	s, err := NewSender(st, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func recWithRUA(domain, ip string, at time.Time, rua ...string) dmarcreport.Record {
	r := rec(domain, ip, at)
	r.Policy.RUA = rua
	return r
}

// fill records recs through a Recorder and flushes.
func fill(t *testing.T, st *store.Store, recs ...dmarcreport.Record) {
	t.Helper()
	r := NewRecorder(st, RecorderOptions{FlushEvery: time.Hour})
	start(t, r)
	for _, x := range recs {
		r.Record(x)
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestSendDue(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "r.db"))
	sk := newSink(t, nil)
	c := &clock{t: day.Add(12 * time.Hour)}
	fill(t, st,
		recWithRUA("example.com", "192.0.2.1", day.Add(time.Hour), "mailto:dmarc@example.com", "mailto:second@example.com", "mailto:third@example.com"),
		recWithRUA("example.com", "192.0.2.1", day.Add(2*time.Hour), "mailto:dmarc@example.com", "mailto:second@example.com", "mailto:third@example.com"),
		recWithRUA("example.com", "192.0.2.2", day.Add(3*time.Hour), "mailto:dmarc@example.com", "mailto:second@example.com", "mailto:third@example.com"),
		recWithRUA("example.org", "192.0.2.3", day.Add(time.Hour), "https://reports.example.net/", "mailto:r@reports.example.net!10m"),
		recWithRUA("example.net", "192.0.2.4", day.Add(time.Hour), "mailto:r@unauthorized.example"),
		recWithRUA("example.info", "192.0.2.5", day.Add(time.Hour), "mailto:anything@relay.example"),
		recWithRUA("example.biz", "192.0.2.6", day.Add(time.Hour), "mailto:r@evil.example"),
		recWithRUA("excluded.example", "192.0.2.7", day.Add(time.Hour), "mailto:r@excluded.example"),
		recWithRUA("example.com", "192.0.2.1", day.Add(25*time.Hour), "mailto:dmarc@example.com"), // next day: open
	)
	s := newSender(t, st, sk, c, func(o *SenderOptions) { o.ExcludeDomains = []string{"Excluded.Example."} })

	// The day is still open: nothing goes.
	if sum, err := s.SendDue(ctx); err != nil || sum != (Summary{}) {
		t.Fatalf("SendDue during the period = %+v, %v", sum, err)
	}
	c.add(12*time.Hour + 2*time.Minute)
	sum, err := s.SendDue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 3 || sum.Skipped != 3 || sum.Failed != 0 {
		t.Errorf("SendDue = %+v, want 3 sent, 3 skipped", sum)
	}
	got := map[string]delivered{}
	for _, d := range sk.received() {
		_, _, _, fb := unpack(t, d.data)
		got[fb.Domain] = d
	}
	if len(got) != 3 {
		t.Fatalf("reports for %v", got)
	}
	// At most max_recipients (2) destinations, in rua order.
	if d := got["example.com"]; strings.Join(d.to, ",") != "dmarc@example.com,second@example.com" || d.from != "bounces@receiver.example" {
		t.Errorf("example.com went from %q to %v", d.from, d.to)
	}
	subj, fn, doc, fb := unpack(t, got["example.com"].data)
	if fb.total() != 3 || len(fb.Records) != 2 || fb.Begin != day.Unix() {
		t.Errorf("example.com report: %+v", fb)
	}
	if want := "receiver.example!example.com!1796342400!1796428799.xml.gz"; fn != want {
		t.Errorf("filename %q, want %q", fn, want)
	}
	if !strings.Contains(subj, "Report Domain: example.com Submitter: receiver.example Report-ID: <"+fb.ReportID+">") {
		t.Errorf("Subject %q", subj)
	}
	validateXML(t, doc)
	// A verified external destination; the !10m suffix ignored.
	if d := got["example.org"]; strings.Join(d.to, ",") != "r@reports.example.net" {
		t.Errorf("example.org went to %v", d.to)
	}
	// The authorizing record's rua replaces the address, same host.
	if d := got["example.info"]; strings.Join(d.to, ",") != "inbox@relay.example" {
		t.Errorf("example.info went to %v", d.to)
	}
	ps, _ := st.Periods(ctx, store.Filter{ClosedBefore: c.now()})
	for _, p := range ps {
		want := store.StateSent
		if p.Domain == "example.net" || p.Domain == "example.biz" || p.Domain == "excluded.example" {
			want = store.StateFailed
		}
		if p.State != want {
			t.Errorf("%s: state %s, want %s", p.Domain, p.State, want)
		}
	}
	// Nothing is sent twice.
	c.add(time.Hour)
	if sum, err := s.SendDue(ctx); err != nil || sum != (Summary{}) {
		t.Errorf("second SendDue = %+v, %v", sum, err)
	}
	if n := len(sk.received()); n != 3 {
		t.Errorf("%d messages after the second run", n)
	}
}

// TestSendRetry: a relay that fails temporarily gets the same report
// again after the backoff; a sender that crashed mid-send leaves the
// report to another, which sends the same Report-ID.
func TestSendRetry(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "r.db"))
	sk := newSink(t, nil)
	sk.tempFail = 1
	c := &clock{t: day.Add(25 * time.Hour)}
	fill(t, st, recWithRUA("example.com", "192.0.2.1", day, "mailto:dmarc@example.com"))
	s := newSender(t, st, sk, c, func(o *SenderOptions) { o.Retries = 3 })
	if sum, _ := s.SendDue(ctx); sum.Failed != 1 {
		t.Fatalf("first attempt: %+v", sum)
	}
	c.add(30 * time.Second) // before the backoff
	if sum, _ := s.SendDue(ctx); sum != (Summary{}) {
		t.Fatalf("retried before the backoff: %+v", sum)
	}
	c.add(time.Minute)
	if sum, _ := s.SendDue(ctx); sum.Sent != 1 {
		t.Fatalf("retry: %+v", sum)
	}
	if s.Sent() != 1 || s.Failed() != 1 {
		t.Errorf("counters sent %d failed %d", s.Sent(), s.Failed())
	}

	// Crash: host a claims the next day's report and dies; host b sends it
	// once the claim lapses, with the Report-ID a would have used.
	next := day.Add(24 * time.Hour)
	fill(t, st, recWithRUA("example.com", "192.0.2.1", next, "mailto:dmarc@example.com"))
	c.t = next.Add(25 * time.Hour)
	if ok, err := st.Claim(ctx, next, "example.com", "crashed-host", c.now(), c.now().Add(10*time.Minute)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if sum, _ := s.SendDue(ctx); sum != (Summary{}) {
		t.Fatalf("sent a report another host holds: %+v", sum)
	}
	c.add(11 * time.Minute)
	if sum, _ := s.SendDue(ctx); sum.Sent != 1 {
		t.Fatalf("after the claim lapsed: %+v", sum)
	}
	msgs := sk.received()
	_, _, _, fb := unpack(t, msgs[len(msgs)-1].data)
	if want := dmarcreport.ReportID("example.com", next, 1, 1, "receiver.example"); fb.ReportID != want {
		t.Errorf("Report-ID %q, want %q", fb.ReportID, want)
	}
}

func TestSendGivesUp(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "r.db"))
	c := &clock{t: day.Add(25 * time.Hour)}
	fill(t, st, recWithRUA("example.com", "192.0.2.1", day, "mailto:dmarc@example.com"))
	// Nothing listens here.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	s := newSender(t, st, &sink{addr: dead}, c, func(o *SenderOptions) { o.Retries = 2 })
	for range 2 {
		if sum, _ := s.SendDue(ctx); sum.Failed != 1 {
			t.Fatalf("attempt: %+v", sum)
		}
		c.add(time.Hour)
	}
	ps, _ := st.Periods(ctx, store.Filter{})
	if len(ps) != 1 || ps[0].State != store.StateFailed || ps[0].Attempts != 2 {
		t.Errorf("after giving up: %+v", ps)
	}
	if sum, _ := s.SendDue(ctx); sum != (Summary{}) {
		t.Errorf("a given-up report was tried again: %+v", sum)
	}
}

// TestMaxRecords: a period with more rows than max_records goes as several
// reports, each with its own Report-ID and filename.
func TestMaxRecords(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "r.db"))
	sk := newSink(t, nil)
	c := &clock{t: day.Add(25 * time.Hour)}
	var recs []dmarcreport.Record
	for i := range 5 {
		recs = append(recs, recWithRUA("example.com", fmt.Sprintf("192.0.2.%d", i), day, "mailto:dmarc@example.com"))
	}
	fill(t, st, recs...)
	s := newSender(t, st, sk, c, func(o *SenderOptions) { o.MaxRecords = 2 })
	if sum, err := s.SendDue(ctx); err != nil || sum.Sent != 1 {
		t.Fatalf("SendDue = %+v, %v", sum, err)
	}
	ids, names := map[string]bool{}, map[string]bool{}
	var total int64
	for _, d := range sk.received() {
		_, fn, doc, fb := unpack(t, d.data)
		ids[fb.ReportID], names[fn] = true, true
		total += fb.total()
		if len(fb.Records) > 2 {
			t.Errorf("%d records in one part", len(fb.Records))
		}
		validateXML(t, doc)
	}
	if len(ids) != 3 || len(names) != 3 || total != 5 {
		t.Errorf("parts: ids %v, names %v, total %d", ids, names, total)
	}
}

// selfSigned makes a certificate for 127.0.0.1.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sink"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestSendStartTLSAuth(t *testing.T) {
	ctx := context.Background()
	cert, pool := selfSigned(t)
	sk := newSink(t, func(s *smtp.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		s.AllowInsecureAuth = false
	})
	sk.user, sk.pass = "reporter", "s3cret"
	st := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "r.db"))
	c := &clock{t: day.Add(25 * time.Hour)}
	fill(t, st, recWithRUA("example.com", "192.0.2.1", day, "mailto:dmarc@example.com"))
	s := newSender(t, st, sk, c, func(o *SenderOptions) {
		o.SMTP.StartTLS, o.SMTP.TLS = true, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
		o.SMTP.Username, o.SMTP.Password = "reporter", "s3cret"
	})
	if sum, err := s.SendDue(ctx); err != nil || sum.Sent != 1 {
		t.Fatalf("SendDue = %+v, %v", sum, err)
	}
	if d := sk.received(); len(d) != 1 || d[0].auth != "reporter" {
		t.Errorf("received %+v", d)
	}
	// A wrong password fails, and is retried later.
	fill(t, st, recWithRUA("example.org", "192.0.2.1", day, "mailto:dmarc@example.org"))
	bad := newSender(t, st, sk, c, func(o *SenderOptions) {
		o.SMTP.StartTLS, o.SMTP.TLS = true, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
		o.SMTP.Username, o.SMTP.Password = "reporter", "wrong"
	})
	if sum, _ := bad.SendDue(ctx); sum.Failed != 1 {
		t.Errorf("with a wrong password: %+v", sum)
	}
}

func TestMailtoAddress(t *testing.T) {
	for uri, want := range map[string]string{
		"mailto:dmarc@example.com":           "dmarc@example.com",
		" mailto:dmarc@example.com!10m ":     "dmarc@example.com",
		"MAILTO:d%2Bx@example.com":           "d+x@example.com",
		"mailto:dmarc@example.com?subject=x": "dmarc@example.com",
		"https://example.com/report":         "",
		"mailto:":                            "",
		"mailto:a@b.example,c@d.example":     "",
		"mailto:no-domain":                   "",
		"mailto:Name <a@example.com>":        "",
	} {
		got, err := mailtoAddress(uri)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("mailtoAddress(%q) = %q, %v; want %q", uri, got, err, want)
		}
	}
}

func FuzzMailtoAddress(f *testing.F) {
	for _, s := range []string{"mailto:dmarc@example.com!10m", "mailto:%40@x", "mailto:a@b?c=d", "x:y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		addr, err := mailtoAddress(uri)
		if err == nil && (!strings.Contains(addr, "@") || hostOf(addr) == "") {
			t.Fatalf("mailtoAddress(%q) = %q", uri, addr)
		}
	})
}
