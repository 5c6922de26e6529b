package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	// example.com asks for reports at a mailbox Postfix delivers locally;
	// example.test authorizes it (RFC 9990 §3).
	x := newE2E(t, map[string][]string{
		"_dmarc.example.com":                      {"v=DMARC1; p=reject; rua=mailto:dmarc@example.test"},
		"example.com._report._dmarc.example.test": {"v=DMARC1"},
	})

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

// TestFleetServe: two `authmilter serve` processes (the built binary)
// share one PostgreSQL store, each judges half of the messages; started
// together, their senders look for closed periods at the same moments, so
// once the period closes both try to send it at once: each domain gets
// exactly one report per period, with the summed counts.
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

	dir := t.TempDir()
	bin := filepath.Join(dir, "authmilter")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	type host struct {
		addr string
		cmd  *exec.Cmd
		logs *syncbuf.Buffer
		done chan error
	}
	hosts := make([]*host, 2)
	for i := range hosts {
		h := &host{addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), logs: &syncbuf.Buffer{}, done: make(chan error, 1)}
		cfg := filepath.Join(dir, fmt.Sprintf("host%d.yaml", i))
		text := "listen: inet:" + h.addr + "\nauthserv_id: mx" + strconv.Itoa(i) + ".fleet.test\npolicy: {internal_networks: []}\n" +
			"dns: {servers: [\"" + dns + "\"]}\n" +
			"arc: {sealer_stats: {file: \"" + filepath.Join(dir, fmt.Sprintf("sealers%d.json", i)) + "\"}}\n" +
			"reports:\n  enabled: true\n  store: \"" + dsn + "\"\n  interval: 1m\n  send: true\n  org_name: Fleet\n  email: dmarc@fleet.test\n" +
			"  smtp: {address: \"" + sl.Addr().String() + "\"}\n"
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		h.cmd = exec.Command(bin, "serve", "--config", cfg)
		h.cmd.Stdout, h.cmd.Stderr = h.logs, h.logs
		hosts[i] = h
	}
	// Started together: their send tickers (every 10 s for a 1m
	// interval) fire at the same moments.
	for i, h := range hosts {
		if err := h.cmd.Start(); err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		go func() { h.done <- h.cmd.Wait() }()
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		for _, h := range hosts {
			h.cmd.Process.Signal(syscall.SIGTERM)
		}
		for i, h := range hosts {
			select {
			case err := <-h.done:
				if err != nil {
					t.Errorf("host %d exit: %v\n%s", i, err, h.logs.String())
				}
			case <-time.After(15 * time.Second):
				h.cmd.Process.Kill()
				<-h.done
				t.Errorf("host %d: no exit 15 s after SIGTERM\n%s", i, h.logs.String())
			}
		}
	}
	t.Cleanup(stop)
	for i, h := range hosts {
		waitListening(t, h.addr, h.logs)
		if !strings.Contains(h.logs.String(), "dmarc reports: recording") {
			t.Fatalf("host %d does not record reports:\n%s", i, h.logs.String())
		}
	}

	want := map[string]int{}
	for i := range 12 {
		d := []string{"example.com", "example.org"}[i%2]
		milterMessage(t, hosts[i%3%2].addr, "192.0.2.1", "a@"+d, d)
		want[d]++
	}
	// Every message is in the store once its host has flushed (at least
	// once a second); the messages may straddle two periods.
	deadline := time.Now().Add(100 * time.Second)
	for {
		got, _, n := fleetReports(t, be)
		if got["example.com"] >= want["example.com"] && got["example.org"] >= want["example.org"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reports after 100 s, counts %v, want %v\n%s\n%s", n, got, want, hosts[0].logs.String(), hosts[1].logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Both hosts try every 10 s: one more turn each shows no second report.
	time.Sleep(11 * time.Second)
	stop()
	got, periods, n := fleetReports(t, be)
	for key, k := range periods {
		if k != 1 {
			t.Errorf("%s: %d reports for one period", key, k)
		}
	}
	if len(got) != 2 || got["example.com"] != want["example.com"] || got["example.org"] != want["example.org"] {
		t.Errorf("reported %v, want %v", got, want)
	}
	sent := 0
	for _, h := range hosts {
		sent += strings.Count(h.logs.String(), "dmarc reports: send run")
	}
	t.Logf("%d reports for %d domain-periods; send runs logged by the hosts: %d", n, len(periods), sent)
}

// fleetReports reads the reports the sink received: the summed counts per
// domain, the number of reports per "domain period-begin", and how many.
func fleetReports(t *testing.T, be *sinkBackend) (counts, periods map[string]int, n int) {
	t.Helper()
	be.mu.Lock()
	defer be.mu.Unlock()
	counts, periods = map[string]int{}, map[string]int{}
	for _, m := range be.msgs {
		doc := gzipAttachment(t, m, "fleet.test")
		var fb struct {
			Domain string `xml:"policy_published>domain"`
			Begin  int64  `xml:"report_metadata>date_range>begin"`
			Counts []int  `xml:"record>row>count"`
		}
		if err := xml.Unmarshal(doc, &fb); err != nil {
			t.Fatal(err)
		}
		periods[fb.Domain+" "+strconv.FormatInt(fb.Begin, 10)]++
		for _, c := range fb.Counts {
			counts[fb.Domain] += c
		}
	}
	return counts, periods, len(be.msgs)
}
