package engine

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/syncbuf"
	"github.com/authmilter/authmilter/milter"
	"github.com/authmilter/authmilter/verify/authres"
)

// FuzzSession drives a whole milter Server (its command loop, our
// session, the Engine) with a command stream from a client that may send
// anything: raw bytes, or (structured) a stream built by genStream from
// valid-looking O/D/C/H/M/R/L/N/B/E/A/Q/T/K/U packets with fuzzed payloads,
// possibly cut short. writes > 0 makes the client vanish after that many
// reads of the server's answers (the server's writes then fail).
//
// It checks that nothing panics (the server recovers panics in a connection
// loop and only logs them, so each callback runs under a guard that records
// them, and the standard logger is watched too), that the connection ends
// and the server forgets it, that every header change and reply the server
// sends is well-formed, that no log record holds a line break, that no
// goroutine is left behind, and that the server then serves a normal
// session.
func FuzzSession(f *testing.F) {
	var stdlog syncbuf.Buffer
	log.SetOutput(&stdlog)
	f.Cleanup(func() { log.SetOutput(io.Discard) })

	w := newFuzzWorld()
	for _, s := range sessionSeeds() {
		f.Add(s.structured, s.writes, s.data)
	}
	f.Fuzz(func(t *testing.T, structured bool, writes uint8, data []byte) {
		stdlog.Reset()
		stream := data
		if structured {
			stream = genStream(data)
		}
		w.session(t, stream, int(writes), &stdlog)
	})
}

// fuzzWorld is the DNS the fuzzed sessions see: the domains of the seeds,
// some with hostile records (explanations and DMARC records with control
// bytes, a junk DKIM key).
type fuzzWorld struct {
	dns     *dnstest.Resolver
	sealKey ed25519.PrivateKey
}

func newFuzzWorld() *fuzzWorld {
	dkimKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	sealKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
	pub := func(k ed25519.PrivateKey) string {
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
	}
	return &fuzzWorld{
		sealKey: sealKey,
		dns: &dnstest.Resolver{
			TXT: map[string][]string{
				"example.com":                    {"v=spf1 ip4:192.0.2.0/24 -all"},
				"_dmarc.example.com":             {"v=DMARC1; p=reject"},
				"sel._domainkey.example.com":     {pub(dkimKey)},
				"helo.example.com":               {"v=spf1 ip4:192.0.2.0/24 -all"},
				"quarantined.example":            {"v=spf1 -all"},
				"_dmarc.quarantined.example":     {"v=DMARC1; p=quarantine"},
				"seal._domainkey.forwarder.test": {pub(sealKey)},
				"hostile.example":                {"v=spf1 ?include:%{l}.%{h}.hostile.example -all exp=%{l}.exp.hostile.example"},
				"*.exp.hostile.example":          {"bad\r\nX-Injected: yes %{s} %{h}\x00\x1b"},
				"_dmarc.hostile.example":         {"v=DMARC1; p=reject; rua=mailto:a@b\r\nX: y; \x00"},
				"sel._domainkey.hostile.example": {"v=DKIM1; k=rsa; p=\x00\r\n;;junk"},
			},
			Fail: map[string]dnstest.Failure{"_dmarc.tempfail.example": dnstest.ServFail},
		},
	}
}

func (w *fuzzWorld) engine(logOut io.Writer, json bool) *Engine {
	var h slog.Handler = slog.NewTextHandler(logOut, nil)
	if json {
		h = slog.NewJSONHandler(logOut, nil)
	}
	return &Engine{
		Resolver:    w.dns,
		AuthservID:  "mx.test",
		Policy:      DefaultPolicy(),
		Timeout:     2 * time.Second,
		ReceivedSPF: true,
		Sealer:      &arc.Sealer{Domain: "forwarder.test", Selector: "seal", Key: w.sealKey},
		Logger:      slog.New(h),
	}
}

// session runs one fuzzed stream and then a normal session on a fresh Server.
func (w *fuzzWorld) session(t *testing.T, stream []byte, writes int, stdlog *syncbuf.Buffer) {
	base := runtime.NumGoroutine()
	var logs recordChecker
	guard := &panicGuard{}
	eng := w.engine(&logs, len(stream)%2 == 1)
	h := &Handler{Engine: func() *Engine { return eng }}
	srv := &milter.Server{
		NewSession:  func(c *milter.Conn) milter.Milter { return guard.wrap(h.NewSession(c)) },
		Logger:      eng.Logger,
		IdleTimeout: 10 * time.Second,
		Actions:     Actions,
		Protocol:    Protocol,
		SymList:     SymList,
	}
	ln := newChanListener()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	sc := newScriptConn(stream, writes)
	ln.ch <- sc
	select {
	case <-sc.closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("the server did not end the connection within 10s")
	}
	pollUntil(t, "the server to forget the connection", func() bool { return srv.Active() == 0 })
	guard.check(t)
	if s := stdlog.String(); strings.Contains(s, "panic") {
		t.Fatalf("a panic was logged:\n%s", s)
	}
	checkAnswers(t, sc.written())

	// The server still serves a well-behaved MTA, over a real pipe.
	checkNormalSession(t, ln)
	guard.check(t)
	if err := logs.err(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, milter.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	pollUntil(t, fmt.Sprintf("goroutines to fall back to %d", base), func() bool { return runtime.NumGoroutine() <= base })
}

// pollUntil polls cond for up to 5 seconds and fails the test with what it
// waited for (and, for goroutines, who is still there).
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for d := 10 * time.Microsecond; !cond(); d = min(2*d, 10*time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("timed out waiting for %s; goroutines:\n%s", what, buf)
		}
		time.Sleep(d)
	}
}

// checkNormalSession runs a complete, ordinary transaction over net.Pipe
// and expects an accept with our Authentication-Results inserted.
func checkNormalSession(t *testing.T, ln *chanListener) {
	t.Helper()
	client, server := net.Pipe()
	defer client.Close()
	client.SetDeadline(time.Now().Add(10 * time.Second))
	ln.ch <- server
	stream := cmdNormalStream("alice@example.com", "Alice <alice@example.com>", "Hello.\r\n")
	stream = append(stream, cmdPacket(milter.CmdQuit)...)
	werr := make(chan error, 1)
	go func() { _, err := client.Write(stream); werr <- err }()
	answers, err := io.ReadAll(client)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("normal session after the fuzzed one: read: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("normal session after the fuzzed one: write: %v", err)
	}
	pkts := checkAnswers(t, answers)
	var ar string
	for _, p := range pkts {
		if p.code == milter.RespInsertHeader && p.name == authres.FieldName {
			ar = p.value
		}
	}
	if len(pkts) == 0 || pkts[len(pkts)-1].code != milter.RespAccept || !strings.Contains(ar, "spf=pass") || !strings.Contains(ar, "dmarc=pass") {
		t.Fatalf("normal session after the fuzzed one: answers %+v", pkts)
	}
}

// milterAnswer is one packet the server sent.
type milterAnswer struct {
	code  byte
	index uint32 // header changes and inserts
	name  string
	value string
	text  string // reply, quarantine reason
}

// checkAnswers parses what the server wrote and checks each packet: header
// names are field names, values are printable text folded only with LF
// followed by SP or HTAB (the Modifier turns CRLF into LF, as Postfix wants),
// our Authentication-Results parse back, replies are one line of printable
// ASCII with a 4xx/5xx code, and no text holds a NUL (the protocol's
// terminator).
func checkAnswers(t *testing.T, b []byte) []milterAnswer {
	t.Helper()
	var out []milterAnswer
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("server wrote a truncated packet %q", b)
		}
		n := int(binary.BigEndian.Uint32(b))
		if n < 1 || 4+n > len(b) {
			t.Fatalf("server wrote a packet of length %d with %d bytes left", n, len(b)-4)
		}
		a := milterAnswer{code: b[4]}
		data := b[5 : 4+n]
		b = b[4+n:]
		switch a.code {
		case milter.CmdOptNeg, milter.RespContinue, milter.RespAccept, milter.RespReject, milter.RespTempfail, milter.RespDiscard:
		case milter.RespInsertHeader, milter.RespChangeHeader:
			if len(data) < 4 {
				t.Fatalf("header change %q too short", data)
			}
			a.index = binary.BigEndian.Uint32(data)
			parts := strings.Split(string(data[4:]), "\x00")
			if len(parts) != 3 || parts[2] != "" {
				t.Fatalf("header change %q: want name NUL value NUL", data)
			}
			a.name, a.value = parts[0], parts[1]
			if err := checkMilterHeader(a.name, a.value, a.code == milter.RespChangeHeader); err != nil {
				t.Fatal(err)
			}
		case milter.RespReplyCode, milter.RespQuarantine:
			text, ok := strings.CutSuffix(string(data), "\x00")
			if !ok || strings.Contains(text, "\x00") {
				t.Fatalf("packet %c: %q is not one NUL-terminated string", a.code, data)
			}
			a.text = text
			if err := checkReplyLine(text, a.code == milter.RespReplyCode); err != nil {
				t.Fatalf("packet %c: %v", a.code, err)
			}
		default:
			t.Fatalf("server wrote an unexpected packet %q", a.code)
		}
		out = append(out, a)
	}
	return out
}

// checkMilterHeader checks a header field the milter asks the MTA to write.
func checkMilterHeader(name, value string, change bool) error {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == ':' }) {
		return fmt.Errorf("header name %q is not a field name", name)
	}
	if change && value == "" {
		return nil // removal
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		switch {
		case c == '\n':
			if i+1 == len(value) || (value[i+1] != ' ' && value[i+1] != '\t') {
				return fmt.Errorf("%s: line break not followed by WSP: %q", name, value)
			}
		case c == '\t':
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("%s: control byte %#x in %q", name, c, value)
		}
	}
	if name == authres.FieldName {
		h, err := authres.Parse(value)
		if err != nil {
			return fmt.Errorf("our %s does not parse: %v\n%q", name, err, value)
		}
		if h.AuthServID != "mx.test" {
			return fmt.Errorf("our %s claims %q", name, h.AuthServID)
		}
	}
	return nil
}

// checkReplyLine checks an SMTP reply (RFC 5321 §4.2: one line, here of
// printable ASCII and at most 512 octets with CRLF, §4.5.3.1.5) or a
// quarantine reason (printable ASCII).
func checkReplyLine(s string, reply bool) error {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return fmt.Errorf("byte %#x in %q", s[i], s)
		}
	}
	if reply && (len(s)+2 > 512 || len(s) < 4 || (s[0] != '4' && s[0] != '5') || s[3] != ' ') {
		return fmt.Errorf("not a single-line 4xx/5xx reply: %q", s)
	}
	return nil
}

// recordChecker is the log output: every Write is one slog record, which
// must be a single line.
type recordChecker struct {
	mu    sync.Mutex
	first error
}

func (r *recordChecker) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := bytes.IndexAny(p, "\r\n"); r.first == nil && i != len(p)-1 {
		r.first = fmt.Errorf("log record is not one line: %q", p)
	}
	return len(p), nil
}

func (r *recordChecker) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

// panicGuard runs every callback of the session under a recover that
// records the panic, so that the server's own recover (which logs it and
// closes the connection) cannot hide it.
type panicGuard struct {
	mu     sync.Mutex
	panics []string
}

func (g *panicGuard) wrap(m milter.Milter) milter.Milter { return &guardedMilter{m: m, g: g} }

func (g *panicGuard) catch() {
	if v := recover(); v != nil {
		g.mu.Lock()
		g.panics = append(g.panics, fmt.Sprintf("%v\n%s", v, debug.Stack()))
		g.mu.Unlock()
	}
}

func (g *panicGuard) check(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.panics) > 0 {
		t.Fatalf("the session panicked: %s", g.panics[0])
	}
}

type guardedMilter struct {
	m milter.Milter
	g *panicGuard
}

func (s *guardedMilter) Connect(host string, family byte, port uint16, addr string, m *milter.Macros) {
	defer s.g.catch()
	s.m.Connect(host, family, port, addr, m)
}

func (s *guardedMilter) Helo(name string, m *milter.Macros) {
	defer s.g.catch()
	s.m.Helo(name, m)
}

func (s *guardedMilter) MailFrom(from string, m *milter.Macros) {
	defer s.g.catch()
	s.m.MailFrom(from, m)
}

func (s *guardedMilter) RcptTo(rcpt string, m *milter.Macros) {
	defer s.g.catch()
	s.m.RcptTo(rcpt, m)
}

func (s *guardedMilter) Header(name, value []byte, m *milter.Macros) {
	defer s.g.catch()
	s.m.Header(name, value, m)
}

func (s *guardedMilter) EndOfHeaders(m *milter.Macros) {
	defer s.g.catch()
	s.m.EndOfHeaders(m)
}

func (s *guardedMilter) BodyChunk(chunk []byte, m *milter.Macros) {
	defer s.g.catch()
	s.m.BodyChunk(chunk, m)
}

func (s *guardedMilter) EndOfMessage(m *milter.Macros, mod *milter.Modifier) (r milter.Reply) {
	defer s.g.catch()
	return s.m.EndOfMessage(m, mod)
}

func (s *guardedMilter) Abort() {
	defer s.g.catch()
	s.m.Abort()
}

func (s *guardedMilter) Close() {
	defer s.g.catch()
	s.m.Close()
}

// chanListener hands the Server the connections sent on ch.
type chanListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// scriptConn is a client that sends a fixed stream and then ends its side
// (EOF), and collects what the server writes. After writes > 0 writes it
// goes away: further writes fail, as on a connection reset by the peer.
type scriptConn struct {
	r      *bytes.Reader // read by the server's one session goroutine only
	mu     sync.Mutex
	out    bytes.Buffer
	writes int
	closed chan struct{}
	once   sync.Once
}

func newScriptConn(stream []byte, writes int) *scriptConn {
	return &scriptConn{r: bytes.NewReader(stream), writes: writes, closed: make(chan struct{})}
}

func (c *scriptConn) Read(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.r.Read(p)
}

func (c *scriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	if c.writes > 0 {
		c.writes--
		if c.writes == 0 {
			return 0, errors.New("connection reset by peer")
		}
	}
	return c.out.Write(p)
}

func (c *scriptConn) written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (c *scriptConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *scriptConn) LocalAddr() net.Addr              { return pipeAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return pipeAddr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }
