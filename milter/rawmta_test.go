package milter

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
)

// The negotiation authmilter's sessions ask for (engine.Actions,
// engine.Protocol, engine.SymList), for the protocol tests.
const (
	testActions  = OptAddHeader | OptChangeHeader | OptQuarantine | OptSetSymList
	testProtocol = OptHeaderLeadingSpace | OptNoUnknown | OptNoData | NoReplyFlags
)

var testSymList = map[Stage][]string{
	StageConnect:  {"j", "{client_addr}", "{client_name}", "{daemon_name}"},
	StageMailFrom: {"i", "{auth_authen}", "{mail_addr}"},
	StageEOH:      {"i"},
	StageEOM:      {"i"},
}

// packet frames one milter command: a 4-byte length, the command byte and
// its data.
func packet(code byte, data ...string) []byte {
	n := 1
	for _, d := range data {
		n += len(d)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, code)
	for _, d := range data {
		b = append(b, d...)
	}
	return b
}

func dialRaw(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*net.TCPConn)
}

// waitClosed reads until the server closes c (EOF or reset) and fails if it
// does not within d.
func waitClosed(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server kept the connection open for %s", d)
		}
		return // io.EOF or ECONNRESET: closed by the server
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
	m.send(CmdOptNeg, data)
	code, reply := m.recv()
	if code != CmdOptNeg || len(reply) < 12 {
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
		if r, _ := m.recv(); r != RespContinue {
			m.t.Fatalf("reply %q to %q, want continue", r, code)
		}
	}
}

// message sends one transaction and returns the final reply's code and
// the header modifications' codes before it.
func (m *rawMTA) message(from, msg string) (final byte, text string, mods string) {
	m.t.Helper()
	m.cmd(CmdMail, gomilter.OptNoMailReply, "<"+from+">")
	m.cmd(CmdRcpt, gomilter.OptNoRcptReply, "<bob@mx.test>")
	head, body, _ := strings.Cut(msg, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		m.cmd(CmdHeader, gomilter.OptNoHeaderReply, k, v)
	}
	m.cmd(CmdEndOfHeaders, gomilter.OptNoEOHReply)
	m.send(CmdBody, []byte(body))
	if m.granted&gomilter.OptNoBodyReply == 0 {
		if r, _ := m.recv(); r != RespContinue {
			m.t.Fatalf("reply %q to a body chunk", r)
		}
	}
	m.send(CmdEndOfMessage, nil)
	for {
		code, data := m.recv()
		switch code {
		case RespAddHeader, RespInsertHeader, RespChangeHeader, RespQuarantine:
			mods += string(code)
			continue
		}
		return code, string(data), mods
	}
}
