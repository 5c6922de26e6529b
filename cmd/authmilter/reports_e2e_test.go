package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/pgtest"
	"github.com/authmilter/authmilter/internal/testsupport/postfixtest"
	"github.com/authmilter/authmilter/internal/testsupport/syncbuf"
)

// TestPostfixReports: the daemon, as a real Postfix's milter, records the
// messages Postfix receives and, once the (one-minute) period is over,
// sends the report through that Postfix to a local mailbox; the test
// unpacks it and checks the counts against the messages it sent.
func TestPostfixReports(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a one-minute reporting period to end")
	}
	x := newE2E(t)
	// example.com asks for reports at a mailbox Postfix delivers locally;
	// example.test authorizes it (RFC 9990 §3).
	x.dns.TXT["_dmarc.example.com"] = []string{"v=DMARC1; p=reject; rua=mailto:dmarc@example.test"}
	x.dns.TXT["example.com._report._dmarc.example.test"] = []string{"v=DMARC1"}

	// Postfix needs the milter's address, the daemon Postfix's: fix the
	// milter's port first.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	milterAddr := l.Addr().String()
	l.Close()
	pf := postfixtest.Start(t, postfixtest.Options{Milter: "inet:" + milterAddr, MilterDefaultAction: "tempfail"})

	db := filepath.Join(t.TempDir(), "reports.db")
	cfg, _ := os.ReadFile(x.cfgPath)
	cfg = append(cfg, fmt.Sprintf(`reports:
  enabled: true
  store: sqlite:%s
  interval: 1m
  send: true
  org_name: E2E Receiver
  email: dmarc-reports@receiver.test
  smtp: {address: %q, mail_from: reports-bounces@receiver.test}
`, db, pf.Addr())...)
	if err := os.WriteFile(x.cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	// All messages in one period: start early in a minute.
	if s := time.Now().Second(); s > 40 {
		time.Sleep(time.Duration(61-s) * time.Second)
	}
	x.start(t, "inet:"+milterAddr)

	good := postfixtest.Envelope{HeloName: "mail.example.com", ClientIP: "192.0.2.10", ClientName: "mail.example.com",
		MailFrom: "alice@example.com", Rcpts: []string{"bob@example.test"}}
	bad := postfixtest.Envelope{HeloName: "mx.spoofer.test", ClientIP: "198.51.100.7",
		MailFrom: "x@example.com", Rcpts: []string{"bob@example.test"}}
	const passed, rejected = 3, 2
	for i := range passed {
		if code, reply, err := pf.Send(t, good, []byte(mail("example.com", fmt.Sprintf("good%d", i), ""))); err != nil || code != 250 {
			t.Fatalf("send: %d %s %v\n%s", code, reply, err, x.log.String())
		}
	}
	for i := range rejected {
		if code, _, err := pf.Send(t, bad, []byte(mail("example.com", fmt.Sprintf("bad%d", i), ""))); err != nil || code != 550 {
			t.Fatalf("spoofed message: %d %v", code, err)
		}
	}

	// The period ends within a minute; the report follows within the
	// sender's grace and tick.
	ds := pf.WaitDelivered(t, passed+1, 150*time.Second)
	var report *postfixtest.Delivered
	for i := range ds {
		if strings.HasPrefix(strings.Join(strings.Fields(ds[i].Get("Subject")), " "), "Report Domain: example.com Submitter: receiver.test Report-ID: <") {
			report = &ds[i]
		}
	}
	if report == nil {
		t.Fatalf("no report among the delivered messages\n%s", x.log.String())
	}
	if to := report.Get("Delivered-To"); to != "dmarc@example.test" {
		t.Errorf("report delivered to %q", to)
	}
	doc := gzipAttachment(t, report.Raw, "receiver.test")
	xmllintValid(t, doc)
	var fb struct {
		Domain  string `xml:"policy_published>domain"`
		Records []struct {
			IP          string `xml:"row>source_ip"`
			Count       int    `xml:"row>count"`
			Disposition string `xml:"row>policy_evaluated>disposition"`
		} `xml:"record"`
	}
	if err := xml.Unmarshal(doc, &fb); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range fb.Records {
		got[r.IP+" "+r.Disposition] += r.Count
	}
	if fb.Domain != "example.com" || got["192.0.2.10 pass"] != passed || got["198.51.100.7 reject"] != rejected || len(got) != 2 {
		t.Errorf("report for %s counts %v, want %d pass from 192.0.2.10 and %d reject from 198.51.100.7\n%s", fb.Domain, got, passed, rejected, doc)
	}
}

// gzipAttachment returns the uncompressed application/gzip part of a
// message, whose name must start with the receiver's domain (RFC 9990).
func gzipAttachment(t *testing.T, raw []byte, receiver string) []byte {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
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
		if !strings.HasSuffix(p.FileName(), ".xml.gz") || !strings.HasPrefix(p.FileName(), receiver+"!") {
			t.Errorf("attachment name %q", p.FileName())
		}
		zr, err := gzip.NewReader(base64.NewDecoder(base64.StdEncoding, p))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	t.Fatalf("no application/gzip part:\n%s", raw)
	return nil
}

// TestFleetServe: two daemons share one PostgreSQL store, each judges half
// of the messages, both send: each domain gets exactly one report for the
// period, with the summed counts.
func TestFleetServe(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a one-minute reporting period to end")
	}
	t.Parallel()
	pg := pgtest.Start(t)
	dsn := pg.CreateDB(t, "fleet")
	dns := dnstest.Serve(t, &dnstest.Resolver{TXT: map[string][]string{
		"example.com":        {"v=spf1 ip4:192.0.2.0/24 -all"},
		"_dmarc.example.com": {"v=DMARC1; p=reject; rua=mailto:dmarc@example.com"},
		"example.org":        {"v=spf1 ip4:192.0.2.0/24 -all"},
		"_dmarc.example.org": {"v=DMARC1; p=none; rua=mailto:dmarc@example.org"},
	}})
	be := &sinkBackend{}
	srv := smtp.NewServer(be)
	srv.Domain = "sink.test"
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(sl)
	t.Cleanup(func() { srv.Close() })

	cfg := writeConfig(t, "listen: inet:127.0.0.1:0\nauthserv_id: mx.fleet.test\npolicy: {internal_networks: []}\n"+
		"dns: {servers: [\""+dns+"\"]}\n"+
		"reports:\n  enabled: true\n  store: \""+dsn+"\"\n  interval: 1m\n  send: true\n  org_name: Fleet\n  email: dmarc@fleet.test\n"+
		"  smtp: {address: \""+sl.Addr().String()+"\"}\n")
	if s := time.Now().Second(); s > 40 {
		time.Sleep(time.Duration(61-s) * time.Second)
	}
	type host struct {
		addr string
		done chan error
		logs *syncbuf.Buffer
	}
	ctx, cancel := context.WithCancel(context.Background())
	hosts := make([]*host, 2)
	for i := range hosts {
		h := &host{done: make(chan error, 1), logs: &syncbuf.Buffer{}}
		ready := make(chan net.Addr, 1)
		go func() { h.done <- serve(ctx, cfg, h.logs, nil, func(a net.Addr) { ready <- a }) }()
		select {
		case a := <-ready:
			h.addr = a.String()
		case err := <-h.done:
			t.Fatalf("host %d: %v", i, err)
		}
		hosts[i] = h
	}
	defer func() {
		cancel()
		for i, h := range hosts {
			if err := <-h.done; err != nil {
				t.Errorf("host %d: %v\n%s", i, err, h.logs.String())
			}
		}
	}()
	want := map[string]int{}
	for i := range 12 {
		d := []string{"example.com", "example.org"}[i%2]
		milterMessage(t, hosts[i%3%2].addr, "192.0.2.1", "a@"+d, d)
		want[d]++
	}

	deadline := time.Now().Add(150 * time.Second)
	for {
		be.mu.Lock()
		n := len(be.msgs)
		be.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reports after 150s\n%s\n%s", n, hosts[0].logs.String(), hosts[1].logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Both hosts tick every 10s: give the slower one a turn to send twice.
	time.Sleep(12 * time.Second)
	be.mu.Lock()
	defer be.mu.Unlock()
	got := map[string]int{}
	for _, m := range be.msgs {
		doc := gzipAttachment(t, m, "fleet.test")
		var fb struct {
			Domain string `xml:"policy_published>domain"`
			Counts []int  `xml:"record>row>count"`
		}
		if err := xml.Unmarshal(doc, &fb); err != nil {
			t.Fatal(err)
		}
		if _, dup := got[fb.Domain]; dup {
			t.Errorf("%s reported twice", fb.Domain)
		}
		for _, c := range fb.Counts {
			got[fb.Domain] += c
		}
	}
	if len(got) != 2 || got["example.com"] != want["example.com"] || got["example.org"] != want["example.org"] {
		t.Errorf("reported %v, want %v", got, want)
	}
}
