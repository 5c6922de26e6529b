package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	msgauthdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/postfixtest"
)

// soakConfig is the size of a soak run. AUTHMILTER_SOAK_MESSAGES sets the
// number of messages; from 2000 on the defaults become those of the long
// local run (concurrency 32, 5 kills, 15 min). AUTHMILTER_SOAK_CONCURRENCY,
// AUTHMILTER_SOAK_KILLS and AUTHMILTER_SOAK_TIMEOUT override each.
type soakConfig struct {
	messages, concurrency, kills int
	timeout                      time.Duration
}

func soakSize(t *testing.T) soakConfig {
	t.Helper()
	c := soakConfig{messages: 300, concurrency: 16, kills: 2, timeout: 50 * time.Second}
	num := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				t.Fatalf("%s=%q: want a count", name, v)
			}
			*dst = n
		}
	}
	num("AUTHMILTER_SOAK_MESSAGES", &c.messages)
	if c.messages >= 2000 {
		c.concurrency, c.kills, c.timeout = 32, 5, 15*time.Minute
	}
	num("AUTHMILTER_SOAK_CONCURRENCY", &c.concurrency)
	num("AUTHMILTER_SOAK_KILLS", &c.kills)
	if v := os.Getenv("AUTHMILTER_SOAK_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("AUTHMILTER_SOAK_TIMEOUT=%q: %v", v, err)
		}
		c.timeout = d
	}
	if c.messages < 4 || c.concurrency < 1 {
		t.Fatalf("soak of %d messages at concurrency %d: too small", c.messages, c.concurrency)
	}
	return c
}

// soakKind is what a soak message is and what must become of it.
type soakKind int

const (
	kindSPFAndDKIM soakKind = iota // 192.0.2.x, signed: delivered, spf=pass dkim=pass dmarc=pass
	kindSPFOnly                    // 192.0.2.x, unsigned: delivered, spf=pass dmarc=pass
	kindReject                     // 198.51.100.x, unsigned: 550 5.7.1
	kindDKIMOnly                   // 198.51.100.x, signed: delivered, dkim=pass dmarc=pass
)

type soakMsg struct {
	n        int
	kind     soakKind
	clientIP string
	mailFrom string
	id       string // Message-ID without brackets
	data     []byte
	attempts int // SMTP transactions so far
}

const soakAuthservID = "mx.soak.test"

// soakDaemon is the authmilter binary running as a separate process, killed
// and restarted on the same address.
type soakDaemon struct {
	bin, cfg, dir, addr string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	starts   int
	logPaths []string
}

// start runs the daemon and waits (bounded) until it listens.
func (d *soakDaemon) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.starts++
	logPath := filepath.Join(d.dir, fmt.Sprintf("daemon-%d.log", d.starts))
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(d.bin, "serve", "--config", d.cfg)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	d.cmd, d.exited, d.logPaths = cmd, exited, append(d.logPaths, logPath)
	deadline := time.Now().Add(15 * time.Second)
	for {
		data, _ := os.ReadFile(logPath)
		if bytes.Contains(data, []byte("authmilter listening")) {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("daemon exited at start:\n%s", data)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon not listening after 15s:\n%s", data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits (bounded) for the process to be gone.
func (d *soakDaemon) kill(t *testing.T) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("daemon pid %d still running 10s after SIGKILL", d.cmd.Process.Pid)
	}
	d.cmd = nil
}

// rss returns the resident set size of the running daemon in KiB.
func (d *soakDaemon) rss(t *testing.T) int {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Errorf("reading RSS: %v", err)
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Errorf("no VmRSS in /proc/%d/status", d.cmd.Process.Pid)
	return 0
}

func (d *soakDaemon) logs() string {
	var b strings.Builder
	for _, p := range d.logPaths {
		data, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "--- %s ---\n%s", filepath.Base(p), data)
	}
	return b.String()
}

// soakMessages builds n messages, each with its own Message-ID and Subject.
func soakMessages(t *testing.T, n int, key ed25519.PrivateKey) []*soakMsg {
	t.Helper()
	msgs := make([]*soakMsg, n)
	for i := range msgs {
		m := &soakMsg{n: i, kind: soakKind(i % 4)}
		m.id = fmt.Sprintf("soak-%06d@example.com", i)
		switch m.kind {
		case kindSPFAndDKIM, kindSPFOnly:
			m.clientIP = fmt.Sprintf("192.0.2.%d", 1+i%254)
			m.mailFrom = "alice@example.com"
		default:
			m.clientIP = fmt.Sprintf("198.51.100.%d", 1+i%254)
			m.mailFrom = "bounces@forwarder.test"
		}
		text := fmt.Sprintf("From: Alice <alice@example.com>\r\nTo: bob@example.test\r\nSubject: soak %06d\r\n"+
			"Date: Tue, 24 Nov 2026 08:00:00 +0000\r\nMessage-ID: <%s>\r\n\r\nMessage %d of the soak.\r\n%s",
			i, m.id, i, strings.Repeat("Some body text to hash.\r\n", 1+i%40))
		m.data = []byte(text)
		if m.kind == kindSPFAndDKIM || m.kind == kindDKIMOnly {
			var out bytes.Buffer
			err := msgauthdkim.Sign(&out, strings.NewReader(text), &msgauthdkim.SignOptions{
				Domain: "example.com", Selector: "sel", Signer: crypto.Signer(key),
				HeaderCanonicalization: msgauthdkim.CanonicalizationRelaxed,
				BodyCanonicalization:   msgauthdkim.CanonicalizationRelaxed,
			})
			if err != nil {
				t.Fatal(err)
			}
			m.data = out.Bytes()
		}
		msgs[i] = m
	}
	return msgs
}

// soakTally is the outcome of every message, as the senders saw it.
type soakTally struct {
	mu         sync.Mutex
	delivered  map[int]bool // 250: queued by Postfix
	rejected   map[int]bool // 550 5.7.1 from us
	retried    map[int]bool // got at least one 4xx before its final reply
	tempfails  int          // 4xx replies in all
	transport  int          // SMTP sessions that failed outright (then retried)
	unexpected []string
	done       atomic.Int64
}

// TestSoakPostfixKill sends messages through a real Postfix to the daemon
// as a separate process, SIGKILLs and restarts the daemon mid-run, and
// accounts for every message: delivered once with our one
// Authentication-Results, or rejected with our 550 5.7.1, or tempfailed
// while the daemon was down and delivered on retry. See docs/soak.md.
func TestSoakPostfixKill(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: builds the binary and runs Postfix")
	}
	size := soakSize(t)
	began := time.Now()

	_, key, _ := ed25519.GenerateKey(rand.Reader)
	dnsAddr := dnstest.Serve(t, &dnstest.Resolver{TXT: map[string][]string{
		"example.com":                {"v=spf1 ip4:192.0.2.0/24 -all"},
		"_dmarc.example.com":         {"v=DMARC1; p=reject"},
		"sel._domainkey.example.com": {"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))},
		"forwarder.test":             {"v=spf1 -all"},
	}})

	dir := t.TempDir()
	d := &soakDaemon{dir: dir, bin: filepath.Join(dir, "authmilter"), cfg: filepath.Join(dir, "authmilter.yaml")}
	if out, err := exec.Command("go", "build", "-o", d.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf("listen: inet:%s\nauthserv_id: %s\nlog: {level: info}\n"+
		"dns: {servers: [%q], timeout: 1s}\npolicy: {internal_networks: []}\nlimits: {message_timeout: 5s}\n",
		d.addr, soakAuthservID, dnsAddr)
	if err := os.WriteFile(d.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.kill(t) })
	if err := d.start(); err != nil {
		t.Fatal(err)
	}

	pf := postfixtest.Start(t, postfixtest.Options{Milter: "inet:" + d.addr, MilterDefaultAction: "tempfail"})
	msgs := soakMessages(t, size.messages, key)

	tally := &soakTally{delivered: map[int]bool{}, rejected: map[int]bool{}, retried: map[int]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), size.timeout)
	defer cancel()

	// Jobs: one SMTP connection each, with one or two messages from one
	// client; retries go back one message at a time after a backoff.
	jobs := make(chan []*soakMsg, size.messages)
	var outstanding sync.WaitGroup
	outstanding.Add(size.messages)
	for i := 0; i < len(msgs); i += 2 {
		jobs <- msgs[i:min(i+2, len(msgs))]
	}
	const maxAttempts = 12
	retry := func(m *soakMsg) {
		if m.attempts >= maxAttempts {
			tally.mu.Lock()
			tally.unexpected = append(tally.unexpected, fmt.Sprintf("%s: still tempfailed after %d attempts", m.id, m.attempts))
			tally.mu.Unlock()
			tally.done.Add(1)
			outstanding.Done()
			return
		}
		backoff := min(50*time.Millisecond<<min(m.attempts, 6), 2*time.Second)
		time.AfterFunc(backoff, func() { jobs <- []*soakMsg{m} })
	}
	final := func(m *soakMsg, code int, reply string) {
		tally.mu.Lock()
		defer tally.mu.Unlock()
		if m.attempts > 1 {
			tally.retried[m.n] = true
		}
		switch {
		case code == 250 && m.kind != kindReject:
			tally.delivered[m.n] = true
		case code == 550 && m.kind == kindReject && strings.Contains(reply, "5.7.1") && strings.Contains(reply, "DMARC policy of example.com is reject"):
			tally.rejected[m.n] = true
		default:
			tally.unexpected = append(tally.unexpected, fmt.Sprintf("%s (kind %d): %d %s", m.id, m.kind, code, reply))
		}
		tally.done.Add(1)
		outstanding.Done()
	}
	go func() { outstanding.Wait(); close(jobs) }()

	var workers sync.WaitGroup
	for w := 0; w < size.concurrency; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for job := range jobs {
				if ctx.Err() != nil {
					for range job {
						outstanding.Done()
					}
					continue
				}
				env := postfixtest.Envelope{HeloName: "mail.example.com", ClientIP: job[0].clientIP, ClientName: "mail.example.com"}
				var mails []postfixtest.Mail
				for _, m := range job {
					m.attempts++
					mails = append(mails, postfixtest.Mail{MailFrom: m.mailFrom, Rcpts: []string{"bob@example.test"}, Data: m.data})
				}
				results, err := pf.SendSession(t, env, mails...)
				for i, m := range job {
					switch {
					case i >= len(results):
						// The session broke before this message's
						// final reply: send it again, as a client
						// would (a break after the final dot could
						// duplicate it: the count below would show).
						tally.mu.Lock()
						tally.transport++
						tally.mu.Unlock()
						retry(m)
					case results[i].Code/100 == 4:
						tally.mu.Lock()
						tally.tempfails++
						tally.mu.Unlock()
						retry(m)
					default:
						final(m, results[i].Code, results[i].Reply)
					}
				}
				if err != nil && len(results) == len(job) {
					t.Logf("session error after all replies: %v", err)
				}
			}
		}()
	}

	// Kill and restart the daemon at even steps of progress; sample RSS
	// after the warm-up and before each kill.
	warmAt := int64(min(50, size.messages/10))
	var rssWarm int
	var rssKill []int
	warmed := false
	for k := 1; k <= size.kills || !warmed; {
		target := warmAt
		if warmed {
			target = int64(k * size.messages / (size.kills + 1))
		}
		for tally.done.Load() < target && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		if ctx.Err() != nil {
			break
		}
		if !warmed {
			rssWarm, warmed = d.rss(t), true
			continue
		}
		rssKill = append(rssKill, d.rss(t))
		d.kill(t)
		time.Sleep(300 * time.Millisecond) // senders meet the gap: 4xx
		if err := d.start(); err != nil {
			t.Errorf("restart %d: %v", k, err)
			cancel() // the senders stop; then the test ends
			break
		}
		k++
	}
	workers.Wait()
	if ctx.Err() != nil {
		t.Fatalf("soak not finished within %s: %d of %d messages accounted for", size.timeout, tally.done.Load(), size.messages)
	}
	sendTime := time.Since(began)

	// Everything Postfix queued is delivered once; nothing stays queued.
	pf.Flush(t)
	want := len(tally.delivered)
	ds := pf.WaitDelivered(t, want, 60*time.Second)
	var q postfixtest.QueueState
	for deadline := time.Now().Add(30 * time.Second); ; {
		if q = pf.Queue(t); q.Total() == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if q.Total() != 0 {
		t.Errorf("%d messages still queued: %+v", q.Total(), q.Messages)
	}
	time.Sleep(500 * time.Millisecond) // a late duplicate would land now
	ds = pf.Deliveries(t)
	rssEnd := d.rss(t)

	byID := map[string]int{}
	badAR := 0
	for _, dl := range ds {
		id := strings.Trim(dl.Get("Message-ID"), "<>")
		byID[id]++
		var ours []string
		for _, v := range dl.Values("Authentication-Results") {
			if strings.HasPrefix(v, soakAuthservID+";") {
				ours = append(ours, v)
			}
		}
		var n int
		if _, err := fmt.Sscanf(id, "soak-%06d@example.com", &n); err != nil || n < 0 || n >= len(msgs) {
			t.Errorf("delivered a message that was not sent: Message-ID %q", id)
			continue
		}
		wants := []string{"dmarc=pass", "header.from=example.com"}
		switch msgs[n].kind {
		case kindSPFAndDKIM:
			wants = append(wants, "spf=pass", "dkim=pass")
		case kindSPFOnly:
			wants = append(wants, "spf=pass", "dkim=none")
		case kindDKIMOnly:
			wants = append(wants, "spf=fail", "dkim=pass")
		}
		ok := len(ours) == 1
		for _, w := range wants {
			ok = ok && strings.Contains(ours[0], w)
		}
		if !ok {
			badAR++
			if badAR <= 5 {
				t.Errorf("%s: our Authentication-Results %q, want exactly one with %q", id, ours, wants)
			}
		}
	}
	lost, duplicated := 0, 0
	for n := range tally.delivered {
		switch c := byID[msgs[n].id]; {
		case c == 0:
			lost++
			if lost <= 5 {
				t.Errorf("%s: accepted (250) but not delivered", msgs[n].id)
			}
		case c > 1:
			duplicated++
			t.Errorf("%s: delivered %d times", msgs[n].id, c)
		}
	}
	for n := range tally.rejected {
		if byID[msgs[n].id] != 0 {
			t.Errorf("%s: rejected with 550 and yet delivered", msgs[n].id)
		}
	}
	accounted := len(tally.delivered) + len(tally.rejected)
	for _, u := range tally.unexpected[:min(len(tally.unexpected), 10)] {
		t.Errorf("unexpected outcome: %s", u)
	}
	if accounted != size.messages || len(ds) != len(tally.delivered) {
		t.Errorf("%d messages sent, %d delivered + %d rejected; %d in the Maildir", size.messages, len(tally.delivered), len(tally.rejected), len(ds))
	}
	if d.starts != size.kills+1 {
		t.Errorf("%d daemon starts, want %d", d.starts, size.kills+1)
	}
	if logs := d.logs(); strings.Contains(logs, "panic") {
		t.Errorf("the daemon logged a panic:\n%s", logs)
	}

	// RSS bound: every sample within the warm-up figure + 64 MiB.
	const rssSlackKiB = 64 << 10
	for _, r := range append(rssKill, rssEnd) {
		if r > rssWarm+rssSlackKiB {
			t.Errorf("daemon RSS %d KiB, warm-up %d KiB: over the bound of +%d KiB", r, rssWarm, rssSlackKiB)
		}
	}
	t.Logf("SOAK messages=%d concurrency=%d restarts=%d delivered=%d rejected=%d retried=%d tempfail_replies=%d broken_sessions=%d lost=%d duplicated=%d bad_ar=%d rss_warm_kib=%d rss_before_kills_kib=%v rss_end_kib=%d send_time=%s wall_time=%s",
		size.messages, size.concurrency, d.starts-1, len(tally.delivered), len(tally.rejected), len(tally.retried),
		tally.tempfails, tally.transport, lost, duplicated, badAR, rssWarm, rssKill, rssEnd,
		sendTime.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	if len(tally.retried) == 0 && size.kills > 0 {
		t.Logf("no message met a restart gap (kills too quick to observe?)")
	}
	if t.Failed() {
		t.Logf("end of Postfix log:\n%s", pf.LogTail(40))
	}
}
