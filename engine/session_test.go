package engine

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/authmilter/authmilter/milter"
)

// startServer runs a milter Server for e on 127.0.0.1 until the test ends.
func startServer(t *testing.T, e *Engine) (*milter.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &milter.Server{
		NewSession:  (&Handler{Engine: func() *Engine { return e }}).NewSession,
		IdleTimeout: 10 * time.Second,
		Actions:     Actions,
		Protocol:    Protocol,
		SymList:     SymList,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv, ln.Addr().String()
}

func newClientSession(t *testing.T, addr string) *gomilter.ClientSession {
	t.Helper()
	c := gomilter.NewClientWithOptions("tcp", addr, gomilter.ClientOptions{
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		// Within what a version 2 milter may negotiate, as Postfix does.
		ActionMask: gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine,
	})
	s, err := c.Session()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sendMessage runs one transaction on s and returns the final action and
// the header modifications.
func sendMessage(t *testing.T, s *gomilter.ClientSession, mailFrom, msg string) (*gomilter.Action, []gomilter.ModifyAction) {
	t.Helper()
	must := func(a *gomilter.Action, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if a.Code != gomilter.ActContinue {
			t.Fatalf("unexpected early action %+v", a)
		}
	}
	must(s.Mail("<"+mailFrom+">", nil))
	must(s.Rcpt("<bob@mx.test>", nil))
	head, body, _ := strings.Cut(msg, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue // the tests' messages are unfolded
		}
		k, v, _ := strings.Cut(line, ":")
		must(s.HeaderField(k, strings.TrimPrefix(v, " ")))
	}
	must(s.HeaderEnd())
	must(s.BodyChunk([]byte(body)))
	mods, act, err := s.End()
	if err != nil {
		t.Fatal(err)
	}
	return act, mods
}

// TestSessionTwoMessagesOneConnection: the second message on an SMTP
// connection is judged with the client address and HELO of the connection,
// after the first was rejected (go-milter makes a new Milter after final
// responses, which never sees Connect or Helo again).
func TestSessionTwoMessagesOneConnection(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, addr := startServer(t, w.engine())
	s := newClientSession(t, addr)
	if _, err := s.Conn("mail.example.com", gomilter.FamilyInet, 40000, "192.0.2.10"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Helo("helo.example.com"); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		act, _ := sendMessage(t, s, "someone@relaxed.example", msgText("example.com", "", "Hi.\r\n"))
		if act.Code != gomilter.ActReplyCode || act.SMTPCode != 550 || !strings.Contains(act.SMTPText, "5.7.1") {
			t.Fatalf("round %d: first message: %+v, want a 550 5.7.1 reply", round, act)
		}
		act, mods := sendMessage(t, s, "alice@example.com", msgText("example.com", "Authentication-Results: mx.test; spf=pass\r\n", "Hi.\r\n"))
		if act.Code != gomilter.ActAccept {
			t.Fatalf("round %d: second message: %+v", round, act)
		}
		var ar string
		var removed []uint32
		for _, m := range mods {
			switch {
			case m.Code == gomilter.ActInsertHeader && m.HeaderName == "Authentication-Results":
				ar = m.HeaderValue
			case m.Code == gomilter.ActChangeHeader && m.HeaderName == "Authentication-Results" && m.HeaderValue == "":
				removed = append(removed, m.HeaderIndex)
			}
		}
		for _, want := range []string{"spf=pass", "smtp.mailfrom=alice@example.com", "smtp.helo=helo.example.com", "dmarc=pass"} {
			if !strings.Contains(ar, want) {
				t.Errorf("round %d: A-R %q lacks %q (client facts lost?)", round, ar, want)
			}
		}
		if len(removed) != 1 || removed[0] != 1 {
			t.Errorf("round %d: forged A-R removals %v, want [1]", round, removed)
		}
	}
}

func TestSessionGarbageDoesNotHurtOthers(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv, addr := startServer(t, w.engine())
	for _, junk := range [][]byte{
		[]byte("GET / HTTP/1.0\r\n\r\n"),
		{0xff, 0xff, 0xff, 0xff, 'O'}, // 4 GiB packet announced
		{0, 0, 0, 0},                  // zero-length packet
		{0, 0, 0, 5, 'M', 'a'},        // truncated
		{0, 0, 0, 2, 'Z', 0},          // unknown command
		{0, 0, 0, 3, 'C', 'x', 0},     // malformed connect
		{0, 0, 0, 1, 'B'},             // body without a message
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(junk)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		var buf [64]byte
		c.Read(buf[:])
		c.Close()
	}
	// A well-behaved session still works.
	s := newClientSession(t, addr)
	if _, err := s.Conn("mail.example.com", gomilter.FamilyInet, 40000, "192.0.2.10"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Helo("helo.example.com"); err != nil {
		t.Fatal(err)
	}
	act, _ := sendMessage(t, s, "alice@example.com", msgText("example.com", "", "Hi.\r\n"))
	if act.Code != gomilter.ActAccept {
		t.Fatalf("after garbage: %+v", act)
	}
	_ = srv
}

// TestSessionDisconnectMidBody: an MTA that goes away in the middle of a
// body leaves nothing running.
func TestSessionDisconnectMidBody(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv, addr := startServer(t, w.engine())
	s := newClientSession(t, addr)
	s.Conn("mail.example.com", gomilter.FamilyInet, 40000, "192.0.2.10")
	s.Helo("helo.example.com")
	s.Mail("<alice@example.com>", nil)
	s.HeaderField("From", "alice@example.com")
	s.HeaderEnd()
	s.BodyChunk([]byte("partial"))
	s.Close()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Active() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still active", srv.Active())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawMTA speaks the milter protocol as Postfix does (version 6, every
// protocol flag offered that it is asked to), reading a reply only where
// the milter's answer says one comes, and recording every packet received.
type rawMTA struct {
	t       *testing.T
	c       net.Conn
	granted gomilter.OptProtocol
	got     []byte // command bytes of the packets received
}

func dialRawMTA(t *testing.T, addr string, offer gomilter.OptProtocol) *rawMTA {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	m := &rawMTA{t: t, c: c}
	data := binary.BigEndian.AppendUint32(nil, 6)
	data = binary.BigEndian.AppendUint32(data, 0x1ff)
	data = binary.BigEndian.AppendUint32(data, uint32(offer))
	m.send(milter.CmdOptNeg, data)
	code, reply := m.recv()
	if code != milter.CmdOptNeg || len(reply) < 12 {
		t.Fatalf("negotiation reply %q %x", code, reply)
	}
	m.granted = gomilter.OptProtocol(binary.BigEndian.Uint32(reply[8:12]))
	return m
}

func (m *rawMTA) send(code byte, data []byte) {
	m.t.Helper()
	pkt := binary.BigEndian.AppendUint32(nil, uint32(len(data)+1))
	if _, err := m.c.Write(append(append(pkt, code), data...)); err != nil {
		m.t.Fatal(err)
	}
}

func (m *rawMTA) recv() (byte, []byte) {
	m.t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(m.c, hdr[:]); err != nil {
		m.t.Fatal(err)
	}
	p := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(m.c, p); err != nil || len(p) == 0 {
		m.t.Fatal(err)
	}
	m.got = append(m.got, p[0])
	return p[0], p[1:]
}

// cmd sends a command and, unless nr was granted, reads its reply, which
// must be "continue".
func (m *rawMTA) cmd(code byte, nr gomilter.OptProtocol, fields ...string) {
	m.t.Helper()
	var data []byte
	for _, f := range fields {
		data = append(append(data, f...), 0)
	}
	m.send(code, data)
	if m.granted&nr == 0 {
		if r, _ := m.recv(); r != milter.RespContinue {
			m.t.Fatalf("reply %q to %q, want continue", r, code)
		}
	}
}

// message sends one transaction and returns the final reply's code and
// the header modifications' codes before it.
func (m *rawMTA) message(from, msg string) (final byte, text string, mods string) {
	m.t.Helper()
	m.cmd(milter.CmdMail, gomilter.OptNoMailReply, "<"+from+">")
	m.cmd(milter.CmdRcpt, gomilter.OptNoRcptReply, "<bob@mx.test>")
	head, body, _ := strings.Cut(msg, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		m.cmd(milter.CmdHeader, gomilter.OptNoHeaderReply, k, v)
	}
	m.cmd(milter.CmdEndOfHeaders, gomilter.OptNoEOHReply)
	m.send(milter.CmdBody, []byte(body))
	if m.granted&gomilter.OptNoBodyReply == 0 {
		if r, _ := m.recv(); r != milter.RespContinue {
			m.t.Fatalf("reply %q to a body chunk", r)
		}
	}
	m.send(milter.CmdEndOfMessage, nil)
	for {
		code, data := m.recv()
		switch code {
		case milter.RespAddHeader, milter.RespInsertHeader, milter.RespChangeHeader, milter.RespQuarantine:
			mods += string(code)
			continue
		}
		return code, string(data), mods
	}
}

// TestSessionNoReplyFlags: the SMFIP_NR_* flags the MTA offers are granted
// (and only those), the milter sends no reply to the commands they name,
// and the verdicts are the same as with a reply to every command.
func TestSessionNoReplyFlags(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, addr := startServer(t, w.engine())
	for _, offer := range []gomilter.OptProtocol{
		0,
		gomilter.OptNoHeaderReply,
		gomilter.OptNoHeaderReply | gomilter.OptNoBodyReply | gomilter.OptNoEOHReply,
		gomilter.OptProtocol(0x1fffff), // Postfix 3
	} {
		m := dialRawMTA(t, addr, offer)
		if want := milter.NoReplyFlags & milter.OptProtocol(offer); milter.OptProtocol(m.granted)&(milter.NoReplyFlags|milter.OptNoDataReply|milter.OptNoUnknownReply) != want {
			t.Errorf("offer %#x: granted %#x, want SMFIP_NR_* %#x", offer, m.granted, want)
		}
		m.cmd(milter.CmdConnect, gomilter.OptNoConnReply, "mail.example.com\x004\x9c\x40192.0.2.10")
		m.cmd(milter.CmdHelo, gomilter.OptNoHeloReply, "helo.example.com")
		for round := 0; round < 2; round++ {
			code, text, mods := m.message("someone@relaxed.example", msgText("example.com", "", "Hi.\r\n"))
			if code != milter.RespReplyCode || !strings.HasPrefix(text, "550") || mods != "" {
				t.Fatalf("offer %#x round %d: first message: %q %q %q, want a 550 reply", offer, round, code, text, mods)
			}
			code, _, mods = m.message("alice@example.com", msgText("example.com", "Authentication-Results: mx.test; spf=pass\r\n", "Hi.\r\n"))
			if code != milter.RespAccept || mods != "mi" {
				t.Fatalf("offer %#x round %d: second message: %q, modifications %q", offer, round, code, mods)
			}
		}
		m.send(milter.CmdQuit, nil)
		// Nothing more: no reply was left unread.
		m.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var b [1]byte
		if n, err := m.c.Read(b[:]); n != 0 || err == nil {
			t.Errorf("offer %#x: a packet after QUIT (%d bytes, %v): replies %q", offer, n, err, m.got)
		}
		conts := strings.Count(string(m.got), "c")
		t.Logf("offer %#x: granted %#x, %d packets from the milter (%d continue)", offer, m.granted, len(m.got), conts)
		if offer == 0x1fffff && conts != 0 {
			t.Errorf("all SMFIP_NR_* offered: %d continue replies", conts)
		}
	}
}
