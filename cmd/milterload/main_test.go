package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authmilter/authmilter/engine"
	"github.com/authmilter/authmilter/internal/testsupport/benchmail"
	"github.com/authmilter/authmilter/milter"
)

// tinyCorpus writes one 2 KB and one 200 KB message per class (the large
// ones have bodies of several chunks).
// The tests share one generated corpus (generating costs RSA key
// searches); each writes its own copy.
var generated = sync.OnceValues(func() (*benchmail.Corpus, error) {
	// The load tool does not care who sealed the ARC chains: our sealer,
	// so that these tests need no python3-dkim.
	return benchmail.Generate(benchmail.Options{Seed: 11, PerClass: 1, Sizes: []benchmail.Size{benchmail.Sizes[0], benchmail.Sizes[2]}, Sealer: benchmail.SealOwn})
})

func tinyCorpus(t *testing.T) (string, *benchmail.Corpus) {
	t.Helper()
	c, err := generated()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := c.WriteDir(dir, "inet:127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return dir, c
}

// serveEngine runs authmilter's milter.Server on 127.0.0.1 over the
// corpus zone and returns its address.
func serveEngine(t *testing.T, c *benchmail.Corpus) string {
	t.Helper()
	pol := engine.DefaultPolicy()
	pol.TrustedSealers = []string{benchmail.TrustedSealer}
	e := &engine.Engine{Resolver: c.Resolver(), AuthservID: benchmail.AuthservID, Policy: pol, Timeout: 5 * time.Second}
	h := &engine.Handler{Engine: func() *engine.Engine { return e }}
	return serve(t, &milter.Server{NewSession: h.NewSession, Actions: engine.Actions, Protocol: engine.Protocol, SymList: engine.SymList})
}

func serve(t *testing.T, srv *milter.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

func runJSON(t *testing.T, args ...string) *Report {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := loadMain(context.Background(), append([]string{"--json"}, args...), &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var r Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return &r
}

// TestRunAgainstAuthmilter: a short run against the real milter, one
// connection per message and then several messages per connection: the
// counts add up and every class gets the action its corpus expects.
func TestRunAgainstAuthmilter(t *testing.T) {
	t.Parallel()
	dir, c := tinyCorpus(t)
	addr := serveEngine(t, c)
	want := map[string]string{}
	for _, m := range c.Messages {
		want[string(m.Class)] = m.Expect.Action
	}
	n := 3 * len(c.Messages)
	for _, tc := range []struct {
		name  string
		reuse string
	}{{"per-message", "1"}, {"reuse", "4"}} {
		t.Run(tc.name, func(t *testing.T) {
			r := runJSON(t, "--milter", "inet:"+addr, "-c", "3", "-n", strconv.Itoa(n), "-d", "20s", "--reuse", tc.reuse, "--pid", strconv.Itoa(os.Getpid()), dir)
			if r.Messages != n || r.Errors != 0 {
				t.Fatalf("messages %d errors %d (%s), want %d and 0", r.Messages, r.Errors, r.FirstError, n)
			}
			sum := 0
			for _, v := range r.Actions {
				sum += v
			}
			if sum != n {
				t.Errorf("actions add up to %d, want %d: %v", sum, n, r.Actions)
			}
			classSum := 0
			for _, cr := range r.Classes {
				classSum += cr.Messages
				if tc.reuse != "1" {
					continue // a reused connection keeps another message's client address
				}
				if cr.Actions[want[cr.Class]] != cr.Messages {
					t.Errorf("class %s: actions %v, want all %s", cr.Class, cr.Actions, want[cr.Class])
				}
			}
			if classSum != n {
				t.Errorf("classes add up to %d, want %d", classSum, n)
			}
			if r.Actions["reject"] == 0 || r.Actions["quarantine"] == 0 || r.Actions["accept"] == 0 {
				t.Errorf("action mix %v lacks accept, reject or quarantine", r.Actions)
			}
			if r.Latency.P50 <= 0 || r.Latency.P99 < r.Latency.P50 || r.MessagesPerS <= 0 {
				t.Errorf("latency %+v, rate %v", r.Latency, r.MessagesPerS)
			}
			if r.Milter == nil || r.Milter.RSSAfterKB == 0 || r.Milter.CPUms < 0 {
				t.Errorf("milter figures %+v", r.Milter)
			}
		})
	}
}

// recorder is a milter.Milter that keeps what the MTA sent.
type recorder struct {
	mu      *sync.Mutex
	log     *[]string
	macros  map[string]string
	headers []string
	chunks  []int
	body    bytes.Buffer
}

func (r *recorder) record(s string) {
	r.mu.Lock()
	*r.log = append(*r.log, s)
	r.mu.Unlock()
}

func (r *recorder) keep(m *milter.Macros) {
	m.Range(func(k, v string) { r.macros[k] = v })
}

func (r *recorder) Connect(host string, family byte, port uint16, addr string, m *milter.Macros) {
	r.keep(m)
	r.record("connect " + string(family) + " " + addr)
}
func (r *recorder) Helo(name string, m *milter.Macros) { r.record("helo " + name) }
func (r *recorder) MailFrom(from string, m *milter.Macros) {
	r.keep(m)
	r.record("mail " + from)
}
func (r *recorder) RcptTo(rcpt string, m *milter.Macros) { r.record("rcpt " + rcpt) }
func (r *recorder) Header(name, value []byte, m *milter.Macros) {
	r.headers = append(r.headers, string(name)+":"+string(value))
}
func (r *recorder) EndOfHeaders(m *milter.Macros) { r.keep(m) }
func (r *recorder) BodyChunk(chunk []byte, m *milter.Macros) {
	r.chunks = append(r.chunks, len(chunk))
	r.body.Write(chunk)
}
func (r *recorder) EndOfMessage(m *milter.Macros, mod *milter.Modifier) milter.Reply {
	r.keep(m)
	r.record("eom")
	for k, v := range r.macros {
		r.record("macro " + k + "=" + v)
	}
	r.record("headers " + strings.Join(r.headers, "\x00"))
	r.record("chunks " + strconv.Itoa(len(r.chunks)) + " " + strconv.Itoa(r.body.Len()))
	if bytes.Contains(bytes.ReplaceAll(r.body.Bytes(), []byte("\r\n"), nil), []byte("\n")) {
		r.record("bare LF in body")
	}
	for _, n := range r.chunks {
		if n > 65535 {
			r.record("chunk over 65535")
		}
	}
	mod.Quarantine("test")
	return milter.ReplyAccept
}
func (r *recorder) Abort() {}
func (r *recorder) Close() {}

// TestProtocolAsPostfix checks what a milter receives: the connect
// address, HELO, envelope, the requested macros ({i} but no
// {auth_authen}), header values with their leading space and folded lines
// joined with LF (SMFIP_HDR_LEADSPC), the body in CRLF chunks of at most
// 65535 bytes; and that the quarantine is reported.
func TestProtocolAsPostfix(t *testing.T) {
	t.Parallel()
	dir, c := tinyCorpus(t)
	var mu sync.Mutex
	var log []string
	srv := &milter.Server{
		NewSession: func(c *milter.Conn) milter.Milter {
			return &recorder{mu: &mu, log: &log, macros: map[string]string{}}
		},
		Actions: engine.Actions, Protocol: engine.Protocol, SymList: engine.SymList,
	}
	addr := serve(t, srv)
	r := runJSON(t, "--milter", "inet:"+addr, "-n", "1", "--match", `^dkim-ed25519\.200KB`, dir)
	if r.Messages != 1 || r.Actions["quarantine"] != 1 {
		t.Fatalf("report %+v", r)
	}
	mu.Lock()
	got := strings.Join(log, "\n")
	mu.Unlock()
	m := c.Find(benchmail.DKIMEd25519, "200KB")
	for _, want := range []string{
		"connect 4 " + m.Envelope.ClientIP,
		"helo " + m.Envelope.HELO,
		"mail " + m.Envelope.MailFrom,
		"rcpt " + m.Envelope.Rcpts[0],
		"macro i=",
		"macro {mail_addr}=" + m.Envelope.MailFrom,
		"headers Received: from " + m.Envelope.HELO,
		"\x00Content-Type: multipart/mixed;\n boundary=",
		"\x00DKIM-Signature: a=ed25519-sha256;",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("milter did not get %q in:\n%.2000s", want, got)
		}
	}
	for _, bad := range []string{"{auth_authen}", "bare LF", "chunk over"} {
		if strings.Contains(got, bad) {
			t.Errorf("milter got %q", bad)
		}
	}
	_, body, _ := strings.Cut(string(m.Data), "\r\n\r\n")
	if want := "chunks 4 " + strconv.Itoa(len(body)); !strings.Contains(got, want) {
		t.Errorf("want %q in:\n%.300s", want, got[strings.Index(got, "chunks"):])
	}
}

// TestRefusesRemoteTargets: only loopback and unix sockets.
func TestRefusesRemoteTargets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, spec := range []string{"inet:192.0.2.1:8895", "inet:[2001:db8::1]:8895", "inet:8895@example.com", "inet:mx.example.com:25", "inet:0.0.0.0:8895"} {
		if _, _, err := parseTarget(ctx, spec); err == nil {
			t.Errorf("%s accepted", spec)
		}
	}
	for _, spec := range []string{"inet:127.0.0.1:8895", "inet:[::1]:8895", "inet:8895@127.0.0.2", "unix:" + filepath.Join(t.TempDir(), "m.sock")} {
		if _, _, err := parseTarget(ctx, spec); err != nil {
			t.Errorf("%s: %v", spec, err)
		}
	}
}

// TestBounded: the duration caps a run even without -n, and a dead target
// gives errors, not a hang.
func TestBounded(t *testing.T) {
	t.Parallel()
	dir, c := tinyCorpus(t)
	addr := serveEngine(t, c)
	start := time.Now()
	r := runJSON(t, "--milter", "inet:"+addr, "-c", "2", "-d", "300ms", dir)
	if el := time.Since(start); el > 3*time.Second || r.Messages == 0 {
		t.Errorf("run took %v for %d messages", el, r.Messages)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	r = runJSON(t, "--milter", "inet:"+dead, "-n", "5", dir)
	if r.Errors != 5 || r.Actions["error"] != 5 {
		t.Errorf("dead target: %+v", r)
	}
}

func TestParsePIDs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		bad  bool
	}{
		{"", nil, false},
		{"42", []int{42}, false},
		{"42, 7,42,", []int{42, 7}, false},
		{"x", nil, true},
		{"0", nil, true},
		{"1,-2", nil, true},
		{",", nil, true},
	} {
		got, err := parsePIDs(tc.in)
		if (err != nil) != tc.bad || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parsePIDs(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestReadProcsSums(t *testing.T) {
	self, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	two, err := readProcs([]int{os.Getpid(), os.Getppid()})
	if err != nil {
		t.Fatal(err)
	}
	if two.rssKB <= self.rssKB/2 || two.ticks < self.ticks {
		t.Errorf("sum over self and parent %+v, self alone %+v", two, self)
	}
	if _, err := readProcs([]int{os.Getpid(), 1 << 30}); err == nil {
		t.Error("readProcs of a missing process: no error")
	}
}

// TestNullNegotiatesAsAuthmilter: the null milter asks the MTA for what
// authmilter's sessions ask for, so that it measures the same protocol.
func TestNullNegotiatesAsAuthmilter(t *testing.T) {
	if nullActions != engine.Actions || nullProtocol != engine.Protocol {
		t.Errorf("null milter negotiates actions %#x protocol %#x, authmilter %#x %#x", nullActions, nullProtocol, engine.Actions, engine.Protocol)
	}
	if !reflect.DeepEqual(nullSymList, engine.SymList) {
		t.Errorf("null milter asks for macros %v, authmilter %v", nullSymList, engine.SymList)
	}
}
