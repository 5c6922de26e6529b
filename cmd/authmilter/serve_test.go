package main

import (
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/syncbuf"
)

// milterSend sends one message through the milter at addr from client ip
// (HELO helo) and returns the milter's modifications and final action.
func milterSend(t *testing.T, addr, ip, helo, mailFrom, from, subject string) ([]gomilter.ModifyAction, *gomilter.Action) {
	t.Helper()
	c := gomilter.NewClientWithOptions("tcp", addr, gomilter.ClientOptions{
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		ActionMask: gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine,
	})
	s, err := c.Session()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	step := func(_ *gomilter.Action, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	step(s.Conn(helo, gomilter.FamilyInet, 40000, ip))
	step(s.Helo(helo))
	step(s.Mail("<"+mailFrom+">", nil))
	step(s.Rcpt("<bob@example.net>", nil))
	step(s.HeaderField("From", " <"+from+">"))
	step(s.HeaderField("Subject", " "+subject))
	step(s.HeaderEnd())
	step(s.BodyChunk([]byte("Hello.\r\n")))
	mods, act, err := s.End()
	if err != nil {
		t.Fatal(err)
	}
	return mods, act
}

// milterMessage sends one message through the milter at addr from client
// ip and returns the final action and our inserted Authentication-Results.
func milterMessage(t *testing.T, addr, ip, mailFrom, from string) (*gomilter.Action, string) {
	t.Helper()
	mods, act := milterSend(t, addr, ip, "client.example", mailFrom, "alice@"+from, "test")
	ar := ""
	for _, m := range mods {
		if m.Code == gomilter.ActInsertHeader && m.HeaderName == "Authentication-Results" {
			ar = strings.TrimSpace(m.HeaderValue)
		}
	}
	return act, ar
}

// TestServeReload: SIGHUP applies a good file and keeps the running
// configuration when the new file is bad.
func TestServeReload(t *testing.T) {
	t.Parallel()
	dns := dnstest.Serve(t, &dnstest.Resolver{TXT: map[string][]string{
		"example.com":        {"v=spf1 ip4:192.0.2.0/24 -all"},
		"_dmarc.example.com": {"v=DMARC1; p=reject"},
	}})
	cfgText := func(id string) string {
		return "listen: inet:127.0.0.1:0\nauthserv_id: " + id + "\npolicy: {internal_networks: []}\ndns: {servers: [\"" + dns + "\"]}\n"
	}
	path := writeConfig(t, cfgText("first.test"))
	logs := &syncbuf.Buffer{}
	hup := make(chan os.Signal, 1)
	ready := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, path, logs, hup, func(a net.Addr) { ready <- a }) }()
	var addr string
	select {
	case a := <-ready:
		addr = a.String()
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	waitLog := func(s string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(logs.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("log never said %q:\n%s", s, logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if _, ar := milterMessage(t, addr, "192.0.2.1", "a@example.com", "example.com"); !strings.HasPrefix(ar, "first.test;") {
		t.Fatalf("A-R %q", ar)
	}

	if os.Getenv("GOMAXPROCS") == "" {
		waitLog("threads=auto")
	}
	os.WriteFile(path, []byte(cfgText("second.test")+"threads: 2\n"), 0o600)
	hup <- syscall.SIGHUP
	waitLog("configuration reloaded")
	waitLog("threads changes only on restart")
	if _, ar := milterMessage(t, addr, "192.0.2.1", "a@example.com", "example.com"); !strings.HasPrefix(ar, "second.test;") {
		t.Fatalf("after reload, A-R %q", ar)
	}

	os.WriteFile(path, []byte(cfgText("third.test")+"bogus_key: 1\n"), 0o600)
	hup <- syscall.SIGHUP
	waitLog("configuration not reloaded")
	if !strings.Contains(logs.String(), "authmilter.yaml:5") {
		t.Errorf("the reload error does not name file and line:\n%s", logs.String())
	}
	if _, ar := milterMessage(t, addr, "192.0.2.1", "a@example.com", "example.com"); !strings.HasPrefix(ar, "second.test;") {
		t.Fatalf("after a bad reload, A-R %q (old config not kept)", ar)
	}
	// One log line per message, with the facts an administrator greps for.
	for _, s := range []string{"msg=message", "client_ip=192.0.2.1", "from_domain=example.com", "spf=pass", "dmarc=pass", "action=accept", "elapsed="} {
		if !strings.Contains(logs.String(), s) {
			t.Errorf("message log lacks %q:\n%s", s, logs.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestServeMetrics(t *testing.T) {
	t.Parallel()
	dns := dnstest.Serve(t, &dnstest.Resolver{TXT: map[string][]string{"example.com": {"v=spf1 -all"}, "_dmarc.example.com": {"v=DMARC1; p=reject"}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	path := writeConfig(t, "listen: inet:127.0.0.1:0\nauthserv_id: m.test\npolicy: {internal_networks: []}\ndns: {servers: [\""+dns+"\"]}\nmetrics: {listen: \""+metricsAddr+"\"}\n")
	ready := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, path, io.Discard, nil, func(a net.Addr) { ready <- a }) }()
	addr := (<-ready).String()
	act, _ := milterMessage(t, addr, "198.51.100.1", "a@example.com", "example.com")
	if act.Code != gomilter.ActReplyCode || act.SMTPCode != 550 {
		t.Fatalf("action %+v, want 550", act)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, s := range []string{
		`authmilter_messages_total{action="reject",dmarc="fail"} 1`,
		`authmilter_results_total{method="spf",result="fail"} 1`,
		`authmilter_message_seconds_count 1`,
		`authmilter_dns_cache_misses_total`,
		// The Go runtime and process series come with the registry.
		"# TYPE go_goroutines gauge\n",
		"# TYPE process_cpu_seconds_total counter\n",
	} {
		if !strings.Contains(string(body), s) {
			t.Errorf("metrics lack %q:\n%s", s, body)
		}
	}
	// Users' dashboards and alerts depend on these names, types and help
	// texts: changing one is a user-visible change.
	for _, m := range []struct{ name, typ, help string }{
		{"authmilter_messages_total", "counter", "Messages judged, by action and DMARC result."},
		{"authmilter_results_total", "counter", "Authentication results, by method and result."},
		{"authmilter_message_seconds", "histogram", "Time from MAIL FROM to the verdict."},
		{"authmilter_dns_cache_hits_total", "counter", "DNS lookups answered from the cache."},
		{"authmilter_dns_cache_misses_total", "counter", "DNS lookups that waited for an upstream query."},
		{"authmilter_dns_queries_total", "counter", "Upstream DNS queries."},
		{"authmilter_dns_errors_total", "counter", "Upstream DNS queries that failed temporarily."},
		{"authmilter_dns_cache_entries", "gauge", "Answers held in the DNS cache."},
	} {
		if want := "# HELP " + m.name + " " + m.help + "\n# TYPE " + m.name + " " + m.typ + "\n"; !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Profiles are off unless metrics.pprof asks for them.
	if code := httpStatus(t, "http://"+metricsAddr+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without metrics.pprof: status %d, want 404", code)
	}
	cancel()
	<-done
}

// TestServePprof: metrics.pprof serves net/http/pprof on the metrics
// listener, next to /metrics.
func TestServePprof(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	path := writeConfig(t, "listen: inet:127.0.0.1:0\nauthserv_id: m.test\nmetrics: {listen: \""+metricsAddr+"\", pprof: true}\n")
	ready := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, path, io.Discard, nil, func(a net.Addr) { ready <- a }) }()
	<-ready
	for _, p := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1"} {
		if code := httpStatus(t, "http://"+metricsAddr+p); code != http.StatusOK {
			t.Errorf("%s: status %d", p, code)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeDefaultBinary runs README's command as a newcomer would: the
// built binary, no configuration file, on inet:127.0.0.1:8895; a message
// goes through; SIGTERM ends it with status 0.
func TestServeDefaultBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:8895", 200*time.Millisecond); err == nil {
		c.Close()
		t.Skip("127.0.0.1:8895 is in use here; the default run cannot be tested")
	}
	bin := filepath.Join(t.TempDir(), "authmilter")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve")
	logs := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:8895", 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the default daemon is not listening on 127.0.0.1:8895:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Loopback is an internal network by default: accepted unjudged,
	// without DNS.
	act, _ := milterMessage(t, "127.0.0.1:8895", "127.0.0.1", "alice@example.com", "example.com")
	if act.Code != gomilter.ActAccept {
		t.Fatalf("action %+v", act)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit 10s after SIGTERM:\n%s", logs.String())
	}
	for _, s := range []string{"authmilter listening", "listen=inet:127.0.0.1:8895", "(embedded defaults)", "internal=true", "stopped"} {
		if !strings.Contains(logs.String(), s) {
			t.Errorf("log lacks %q:\n%s", s, logs.String())
		}
	}
}

// TestTuneGC: the daemon's GC settings apply unless the operator set GOGC
// or GOMEMLIMIT. Not parallel: it changes the process's GC settings.
func TestTuneGC(t *testing.T) {
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(oldPercent); debug.SetMemoryLimit(oldLimit) })

	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if p, l := tuneGC(env(nil)); !p || !l {
		t.Fatalf("no environment: set percent %v, limit %v", p, l)
	}
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GC percent %d, want %d", got, gcPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != memoryLimit {
		t.Errorf("memory limit %d, want %d", got, memoryLimit)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if p, l := tuneGC(env(map[string]string{"GOGC": "100", "GOMEMLIMIT": "1GiB"})); p || l {
		t.Fatalf("operator's GOGC/GOMEMLIMIT: set percent %v, limit %v", p, l)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent %d after GOGC=100, want 100", got)
	}
}
