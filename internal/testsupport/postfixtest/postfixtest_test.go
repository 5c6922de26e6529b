package postfixtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/textproto"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-milter"
)

// testMilter adds "X-Test-Milter: seen <client-ip> <helo>" at end of
// message, rejects MAIL FROM addresses containing "reject" and quarantines
// those containing "hold".
type testMilter struct {
	rec      *recorder
	ip, helo string
	hold     bool
}

func (m *testMilter) Connect(host, family string, port uint16, addr net.IP, mod *milter.Modifier) (milter.Response, error) {
	m.ip = addr.String()
	m.rec.add("connect host=%s family=%s addr=%s", host, family, addr)
	return milter.RespContinue, nil
}

func (m *testMilter) Helo(name string, mod *milter.Modifier) (milter.Response, error) {
	m.helo = name
	m.rec.add("helo %s", name)
	return milter.RespContinue, nil
}

func (m *testMilter) MailFrom(from string, mod *milter.Modifier) (milter.Response, error) {
	m.rec.add("mail %s", from)
	// A fresh Milter (after a reject on the same connection) never saw
	// Connect: fall back on the {client_addr} macro requested via SymList.
	if m.ip == "" {
		m.ip = mod.Macros["{client_addr}"]
	}
	if strings.Contains(from, "reject") {
		return milter.NewResponseStr(byte(milter.ActReplyCode), "550 5.7.1 test reject"), nil
	}
	m.hold = strings.Contains(from, "hold")
	return milter.RespContinue, nil
}

func (m *testMilter) RcptTo(rcpt string, mod *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}

func (m *testMilter) Header(name, value string, mod *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}

func (m *testMilter) Headers(h textproto.MIMEHeader, mod *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}

func (m *testMilter) BodyChunk(chunk []byte, mod *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}

func (m *testMilter) Body(mod *milter.Modifier) (milter.Response, error) {
	if err := mod.AddHeader("X-Test-Milter", fmt.Sprintf("seen %s %s", dash(m.ip), dash(m.helo))); err != nil {
		return nil, err
	}
	if m.hold {
		if err := mod.Quarantine("test hold"); err != nil {
			return nil, err
		}
	}
	return milter.RespAccept, nil
}

func (m *testMilter) Abort(mod *milter.Modifier) error {
	m.rec.add("abort")
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

// captureListener keeps the bytes Postfix sends on each milter connection,
// to check the negotiation and the macro packets independently of go-milter.
type captureListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*captureConn
}

func (l *captureListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &captureConn{Conn: c}
	l.mu.Lock()
	l.conns = append(l.conns, cc)
	l.mu.Unlock()
	return cc, nil
}

func (l *captureListener) streams() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	for _, c := range l.conns {
		c.mu.Lock()
		out = append(out, bytes.Clone(c.buf.Bytes()))
		c.mu.Unlock()
	}
	return out
}

type captureConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *captureConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if c.buf.Len() < 1<<20 {
		c.buf.Write(p[:n])
	}
	c.mu.Unlock()
	return n, err
}

type packet struct {
	cmd  byte
	data []byte
}

func parsePackets(b []byte) []packet {
	var ps []packet
	for len(b) >= 5 {
		n := binary.BigEndian.Uint32(b)
		if n == 0 || int(n) > len(b)-4 {
			break
		}
		ps = append(ps, packet{b[4], b[5 : 4+n]})
		b = b[4+n:]
	}
	return ps
}

func startTestMilter(t *testing.T) (*captureListener, *recorder) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &captureListener{Listener: ln}
	rec := &recorder{}
	srv := &milter.Server{
		NewMilter: func() milter.Milter { return &testMilter{rec: rec} },
		Actions:   milter.OptAddHeader | milter.OptQuarantine | milter.OptSetSymList,
		SymList: map[milter.Stage][]string{
			milter.StageMailFrom: {"{client_addr}", "{mail_addr}", "i"},
		},
	}
	go func() { _ = srv.Serve(cl) }()
	// Server.Close is racy; closing the listener stops Serve just as well.
	t.Cleanup(func() { _ = cl.Close() })
	return cl, rec
}

func testMessage(subject string) []byte {
	return []byte("From: Alice <alice@example.com>\r\n" +
		"To: bob@example.test\r\n" +
		"Subject: " + subject + "\r\n" +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.com>\r\n" +
		"Date: Mon, 02 Feb 2026 10:00:00 +0000\r\n" +
		"\r\n" +
		"Hello.\r\n" +
		".leading dot survives dot-stuffing\r\n")
}

func TestPostfixWithMilter(t *testing.T) {
	started := time.Now()
	ml, rec := startTestMilter(t)
	pf := Start(t, Options{
		Milter:               "inet:" + ml.Addr().String(),
		MilterConnectTimeout: 2 * time.Second,
		MilterCommandTimeout: 5 * time.Second,
	})
	t.Logf("postfix started in %s on %s", time.Since(started).Round(time.Millisecond), pf.Addr())
	env := Envelope{
		HeloName: "mail.example.com",
		ClientIP: "192.0.2.10",
		MailFrom: "alice@example.com",
		Rcpts:    []string{"bob@example.test"},
	}

	// (1) XCLIENT client address and HELO reach the milter; its header is
	// in the delivered message.
	code, reply, err := pf.Send(t, env, testMessage("one"))
	if err != nil || code != 250 {
		t.Fatalf("send: %d %q %v", code, reply, err)
	}
	ds := pf.WaitDelivered(t, 1, 20*time.Second)
	d := ds[0]
	if got, want := d.Get("X-Test-Milter"), "seen 192.0.2.10 mail.example.com"; got != want {
		t.Errorf("X-Test-Milter = %q, want %q\n%s", got, want, d.Raw)
	}
	if got := d.Get("Subject"); got != "one" {
		t.Errorf("Subject = %q", got)
	}
	if !bytes.Contains(d.Body, []byte("\n.leading dot survives")) {
		t.Errorf("body not dot-unstuffed correctly: %q", d.Body)
	}
	if !strings.Contains(d.Get("Received"), "192.0.2.10") {
		t.Errorf("Received does not show the XCLIENT address: %q", d.Get("Received"))
	}
	t.Logf("delivered header:\n%s", headerText(d))

	// (1b) An IPv6 client through XCLIENT (ADDR=IPV6:...).
	env6 := env
	env6.ClientIP, env6.HeloName = "2001:db8::10", "mail6.example.com"
	if code, reply, err := pf.Send(t, env6, testMessage("one v6")); err != nil || code != 250 {
		t.Fatalf("send over IPv6: %d %q %v", code, reply, err)
	}
	d = bySubject(t, pf.WaitDelivered(t, 2, 20*time.Second), "one v6")
	if got, want := d.Get("X-Test-Milter"), "seen 2001:db8::10 mail6.example.com"; got != want {
		t.Errorf("IPv6 client: X-Test-Milter = %q, want %q", got, want)
	}

	// (2) A milter reject with a custom reply reaches the client.
	rejEnv := env
	rejEnv.MailFrom = "reject@example.com"
	code, reply, err = pf.Send(t, rejEnv, testMessage("two"))
	if err != nil {
		t.Fatal(err)
	}
	if code != 550 || reply != "5.7.1 test reject" {
		t.Errorf("reject: got %d %q, want 550 %q", code, reply, "5.7.1 test reject")
	}

	// (3) Three transactions on one connection, the first rejected: the
	// others are delivered. go-milter keeps its Milter after a custom
	// reply (SMFIR_REPLYCODE counts as "continue") but makes a fresh one
	// after the accept that ends the second message: the third message's
	// Milter never saw Connect or Helo and only knows the client through
	// the {client_addr} macro it asked for with SymList.
	rs, err := pf.SendSession(t, env,
		Mail{MailFrom: "reject-first@example.com", Rcpts: env.Rcpts, Data: testMessage("three a")},
		Mail{MailFrom: "alice@example.com", Rcpts: env.Rcpts, Data: testMessage("three b")},
		Mail{MailFrom: "alice@example.com", Rcpts: env.Rcpts, Data: testMessage("three c")},
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("%d results, want 3", len(rs))
	}
	if rs[0].Stage != StageMail || rs[0].Code != 550 || rs[0].Reply != "5.7.1 test reject" {
		t.Errorf("first transaction: %+v, want 550 at MAIL", rs[0])
	}
	for _, r := range rs[1:] {
		if r.Stage != StageEOM || r.Code != 250 || r.QueueID() == "" {
			t.Errorf("later transaction: %+v, want 250 queued", r)
		}
	}
	ds = pf.WaitDelivered(t, 4, 20*time.Second)
	if len(ds) != 4 {
		t.Fatalf("%d deliveries, want 4 (the rejected message must not be delivered)", len(ds))
	}
	for subject, want := range map[string]string{
		"three b": "seen 192.0.2.10 mail.example.com",
		"three c": "seen 192.0.2.10 -", // HELO lost: Postfix has no HELO macro
	} {
		if got := bySubject(t, ds, subject).Get("X-Test-Milter"); got != want {
			t.Errorf("%s: X-Test-Milter = %q, want %q", subject, got, want)
		}
	}

	// Quarantine: the message lands in the hold queue with the milter's
	// header, and is delivered once released.
	holdEnv := env
	holdEnv.MailFrom = "hold@example.com"
	rs, err = pf.SendSession(t, holdEnv, Mail{MailFrom: holdEnv.MailFrom, Rcpts: env.Rcpts, Data: testMessage("held")})
	if err != nil || rs[0].Code != 250 {
		t.Fatalf("quarantined send: %+v %v", rs, err)
	}
	held := pf.HoldQueue(t)
	if len(held) != 1 || held[0] != rs[0].QueueID() {
		t.Fatalf("hold queue %v, want [%s]", held, rs[0].QueueID())
	}
	if q := pf.Queue(t); q.Hold != 1 || q.Total() != 1 || q.Messages[0].Sender != "hold@example.com" {
		t.Errorf("postqueue -j: %+v", q)
	}
	heldHdr, _ := ParseMessage(pf.HeldMessage(t, held[0]))
	if got := (Delivered{Header: heldHdr}).Get("X-Test-Milter"); got != "seen 192.0.2.10 mail.example.com" {
		t.Errorf("held message X-Test-Milter = %q", got)
	}
	if !strings.Contains(pf.Logs(), "milter-hold: END-OF-MESSAGE") {
		t.Errorf("log does not show the milter-hold")
	}
	pf.ReleaseHold(t)
	d = bySubject(t, pf.WaitDelivered(t, 5, 20*time.Second), "held")
	if got := d.Get("X-Test-Milter"); got != "seen 192.0.2.10 mail.example.com" {
		t.Errorf("released message X-Test-Milter = %q", got)
	}
	if ids := pf.HoldQueue(t); len(ids) != 0 {
		t.Errorf("hold queue after release: %v", ids)
	}

	checkNegotiation(t, ml)
	rec.mu.Lock()
	t.Logf("milter events:\n  %s", strings.Join(rec.events, "\n  "))
	rec.mu.Unlock()

	if q := pf.Queue(t); q.Total() != 0 || len(pf.HoldQueue(t)) != 0 {
		t.Errorf("queue not empty: %+v", q)
	}

	// (4) Milter down: tempfail by default, delivery without the header
	// once milter_default_action=accept.
	_ = ml.Close()
	code, reply, err = pf.Send(t, env, testMessage("four a"))
	if err != nil {
		t.Fatal(err)
	}
	if code/100 != 4 {
		t.Errorf("milter down, tempfail: got %d %q, want 4xx", code, reply)
	}
	pf.Reconfigure(t, map[string]string{"milter_default_action": "accept"})
	code, reply, err = pf.Send(t, env, testMessage("four b"))
	if err != nil || code != 250 {
		t.Fatalf("milter down, accept: %d %q %v", code, reply, err)
	}
	ds = pf.WaitDelivered(t, 6, 20*time.Second)
	if len(ds) != 6 {
		t.Errorf("%d deliveries, want 6 (the tempfailed message must not be delivered)", len(ds))
	}
	if d := bySubject(t, ds, "four b"); d.Get("X-Test-Milter") != "" {
		t.Errorf("accept without milter: unexpected header\n%s", d.Raw)
	}
	if !strings.Contains(pf.Logs(), "milter") {
		t.Errorf("log does not mention the milter failure")
	}
	t.Logf("total %s", time.Since(started).Round(time.Millisecond))
}

func bySubject(t *testing.T, ds []Delivered, subject string) Delivered {
	t.Helper()
	for _, d := range ds {
		if d.Get("Subject") == subject {
			return d
		}
	}
	t.Fatalf("no delivered message with Subject %q", subject)
	return Delivered{}
}

func headerText(d Delivered) string {
	var b strings.Builder
	for _, f := range d.Header {
		b.WriteString(f.Raw)
	}
	return b.String()
}

// checkNegotiation inspects the raw bytes Postfix sent to the milter:
// protocol version 6 with every action and step offered, and the macros of
// each stage.
func checkNegotiation(t *testing.T, ml *captureListener) {
	t.Helper()
	streams := ml.streams()
	if len(streams) == 0 {
		t.Fatal("milter saw no connection")
	}
	ps := parsePackets(streams[0])
	if len(ps) == 0 || ps[0].cmd != 'O' || len(ps[0].data) < 12 {
		t.Fatalf("first packet is not SMFIC_OPTNEG: %+v", ps)
	}
	version := binary.BigEndian.Uint32(ps[0].data)
	actions := binary.BigEndian.Uint32(ps[0].data[4:])
	protocol := binary.BigEndian.Uint32(ps[0].data[8:])
	t.Logf("SMFIC_OPTNEG: version %d, actions %#x, protocol %#x", version, actions, protocol)
	if version != 6 {
		t.Errorf("Postfix offered milter protocol version %d, want 6", version)
	}
	if actions&0x1ff != 0x1ff {
		t.Errorf("Postfix offered actions %#x, want all of 0x1ff", actions)
	}
	// Command sequence on each milter connection.
	for i, st := range streams {
		var seq []string
		for _, p := range parsePackets(st) {
			switch p.cmd {
			case 'D':
				if len(p.data) > 0 {
					seq = append(seq, "D"+string(p.data[:1]))
				}
			case 'C':
				// hostname NUL family port(2 bytes) address NUL
				host, rest, _ := bytes.Cut(p.data, []byte{0})
				desc := string(host)
				if len(rest) >= 3 {
					desc += fmt.Sprintf(",%c,%d,%s", rest[0], binary.BigEndian.Uint16(rest[1:3]), bytes.TrimRight(rest[3:], "\x00"))
				}
				seq = append(seq, "C("+desc+")")
			case 'H', 'M', 'R':
				seq = append(seq, string(p.cmd)+"("+strings.ReplaceAll(strings.TrimRight(string(p.data), "\x00"), "\x00", ",")+")")
			default:
				seq = append(seq, string(p.cmd))
			}
		}
		t.Logf("milter connection %d: %s", i, strings.Join(seq, " "))
	}
	// Macros per command, across all connections.
	macros := map[byte]map[string]string{}
	for _, s := range streams {
		for _, p := range parsePackets(s) {
			if p.cmd != 'D' || len(p.data) == 0 {
				continue
			}
			stage := p.data[0]
			if macros[stage] == nil {
				macros[stage] = map[string]string{}
			}
			parts := strings.Split(strings.TrimSuffix(string(p.data[1:]), "\x00"), "\x00")
			for i := 0; i+1 < len(parts); i += 2 {
				macros[stage][parts[i]] = parts[i+1]
			}
		}
	}
	var b strings.Builder
	for _, stage := range []byte("CHMRTNE") {
		var names []string
		for k, v := range macros[stage] {
			names = append(names, k+"="+v)
		}
		sort.Strings(names)
		fmt.Fprintf(&b, "  %c: %s\n", stage, strings.Join(names, " "))
	}
	t.Logf("macros sent by Postfix per command:\n%s", b.String())
	if got := macros['M']["{client_addr}"]; got != "192.0.2.10" {
		t.Errorf("SymList {client_addr} at MAIL = %q, want 192.0.2.10 (macro list honoured at v2?)", got)
	}
	if _, ok := macros['M']["{mail_host}"]; ok {
		t.Errorf("SymList did not replace the default MAIL macro list")
	}
	if got := macros['C']["{daemon_name}"]; got == "" {
		t.Errorf("no {daemon_name} at connect")
	}
}

// fatalRecorder captures Fatal/Skip of Start run in its own goroutine.
type fatalRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalRecorder) fail(msg string) {
	f.mu.Lock()
	f.msg = msg
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fatalRecorder) Fatalf(format string, args ...any) { f.fail(fmt.Sprintf(format, args...)) }
func (f *fatalRecorder) Fatal(args ...any)                 { f.fail(fmt.Sprint(args...)) }

func startExpectingFailure(t *testing.T, opts Options) string {
	t.Helper()
	fr := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(fr, opts)
	}()
	<-done
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return fr.msg
}

func TestStartRefusesBadConfig(t *testing.T) {
	Start(t, Options{}).Stop() // skips here when Postfix is missing
	msg := startExpectingFailure(t, Options{Extra: map[string]string{"mail_owner": "no-such-user-postfixtest"}})
	if !strings.Contains(msg, "Postfix refused the configuration") || !strings.Contains(msg, "unknown user name value: no-such-user-postfixtest") {
		t.Errorf("Start with a bad mail_owner: %q", msg)
	}
	msg = startExpectingFailure(t, Options{MilterDefaultAction: "bogus"})
	if !strings.Contains(msg, `MilterDefaultAction "bogus"`) {
		t.Errorf("Start with a bad MilterDefaultAction: %q", msg)
	}
}

func TestStartRetriesBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	calls := 0
	pickPort = func() (int, error) {
		calls++
		if calls == 1 {
			return busyPort, nil
		}
		return freePort()
	}
	defer func() { pickPort = freePort }()

	pf := Start(t, Options{})
	if calls < 2 || pf.Addr() == busy.Addr().String() {
		t.Fatalf("Start did not move off the busy port %d (%d picks, now %s)", busyPort, calls, pf.Addr())
	}
	code, reply, err := pf.Send(t, Envelope{MailFrom: "", Rcpts: []string{"someone@elsewhere.test"}}, []byte("Subject: no milter\n\nbody\n"))
	if err != nil || code != 250 {
		t.Fatalf("send: %d %q %v", code, reply, err)
	}
	d := pf.WaitDelivered(t, 1, 20*time.Second)[0]
	// Mail for any domain lands in the Maildir; nothing leaves the host.
	if d.Get("Delivered-To") != "someone@elsewhere.test" || d.Get("Return-Path") != "<>" {
		t.Errorf("unexpected delivery:\n%s", d.Raw)
	}
}
