package milter

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// noteMilter records the calls it gets, one line each.
type noteMilter struct {
	mu    *sync.Mutex
	notes *[]string
}

func (n noteMilter) note(s string) {
	n.mu.Lock()
	*n.notes = append(*n.notes, s)
	n.mu.Unlock()
}

func (n noteMilter) Connect(host string, family byte, port uint16, addr string, m *Macros) {
	n.note("connect " + host + " " + string(family) + " " + addr + " " + m.Get("j"))
}
func (n noteMilter) Helo(name string, m *Macros)     { n.note("helo " + name) }
func (n noteMilter) MailFrom(from string, m *Macros) { n.note("mail " + from + " i=" + m.Get("i")) }
func (n noteMilter) RcptTo(rcpt string, m *Macros)   { n.note("rcpt " + rcpt) }
func (n noteMilter) Header(name, value []byte, m *Macros) {
	n.note("header " + string(name) + ":" + string(value))
}
func (n noteMilter) EndOfHeaders(m *Macros)            { n.note("eoh") }
func (n noteMilter) BodyChunk(chunk []byte, m *Macros) { n.note("body " + string(chunk)) }
func (n noteMilter) EndOfMessage(m *Macros, mod *Modifier) Reply {
	n.note("eom i=" + m.Get("i"))
	return ReplyCode("550 5.7.1 no")
}
func (n noteMilter) Abort() { n.note("abort") }
func (n noteMilter) Close() { n.note("close") }

func startNoteServer(t *testing.T) (string, *sync.Mutex, *[]string, *Server) {
	t.Helper()
	var mu sync.Mutex
	var notes []string
	srv := &Server{
		NewSession: func(c *Conn) Milter { return noteMilter{&mu, &notes} },
		Actions:    testActions, Protocol: testProtocol, SymList: testSymList,
		IdleTimeout: 10 * time.Second,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return ln.Addr().String(), &mu, &notes, srv
}

// TestServerProtocol: version 6 is answered to an MTA offering 6 or more,
// the MTA's version when lower; macros reach the command they precede and
// later ones; a message after SMFIC_QUIT_NC starts afresh; the Milter is
// closed when the connection ends.
func TestServerProtocol(t *testing.T) {
	addr, mu, notes, _ := startNoteServer(t)
	var lists *string
	for _, v := range []uint32{2, 6, 7} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		m := &rawMTA{t: t, c: c}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		data := binary.BigEndian.AppendUint32(nil, v)
		data = binary.BigEndian.AppendUint32(data, 0x1ff)
		data = binary.BigEndian.AppendUint32(data, 0x1fffff)
		m.send(CmdOptNeg, data)
		code, reply := m.recv()
		if code != CmdOptNeg || len(reply) < 12 {
			t.Fatalf("version %d: negotiation reply %q %x", v, code, reply)
		}
		if got, want := binary.BigEndian.Uint32(reply), min(v, 6); got != want {
			t.Errorf("MTA version %d: answered %d, want %d", v, got, want)
		}
		if v >= 6 && !strings.Contains(string(reply[12:]), "{auth_authen}") {
			t.Errorf("version %d: no macro lists in %q", v, reply[12:])
		}
		if v >= 6 {
			// Encoded once, sent the same to every connection.
			if got := string(reply[12:]); lists == nil {
				lists = &got
			} else if got != *lists {
				t.Errorf("version %d: macro lists %q, first connection got %q", v, got, *lists)
			}
		}
		c.Close()
	}

	m := dialRawMTA(t, addr, 0x1fffff)
	m.send(CmdMacro, []byte("Cj\x00mx.test\x00"))
	m.send(CmdConnect, []byte("client.example\x004\x9c\x40192.0.2.1\x00"))
	m.send(CmdHelo, []byte("helo.example\x00"))
	m.send(CmdMacro, []byte("Mi\x00Q1\x00"))
	m.send(CmdMail, []byte("<a@example.com>\x00SIZE=10\x00"))
	m.send(CmdRcpt, []byte("<b@example.net>\x00"))
	m.send(CmdHeader, []byte("Subject\x00 hi\x00"))
	m.send(CmdEndOfHeaders, nil)
	m.send(CmdBody, []byte("body\r\n"))
	m.send(CmdEndOfMessage, nil)
	if code, text := m.recv(); code != RespReplyCode || string(text) != "550 5.7.1 no\x00" {
		t.Fatalf("end of message: %q %q", code, text)
	}
	m.send(CmdQuitNewConn, nil) // a new SMTP connection on this milter connection
	m.send(CmdConnect, []byte("other.example\x00U"))
	m.send(CmdMail, []byte("<>\x00"))
	m.send(CmdAbort, nil)
	m.send(CmdQuit, nil)
	waitClosed(t, m.c, 5*time.Second)
	want := []string{
		"connect client.example 4 192.0.2.1 mx.test", "helo helo.example", "mail a@example.com i=Q1",
		"rcpt b@example.net", "header Subject: hi", "eoh", "body body\r\n", "eom i=Q1",
		"abort", "connect other.example U  ", "mail  i=", "abort",
	}
	// Every connection, the three negotiation-only ones too, ends with
	// one close.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		var calls []string
		closes := 0
		for _, n := range *notes {
			if n == "close" {
				closes++
			} else {
				calls = append(calls, n)
			}
		}
		mu.Unlock()
		got := strings.Join(calls, "\n")
		if got == strings.Join(want, "\n") && closes == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls:\n%s\nwant:\n%s\n%d closes, want 4", got, strings.Join(want, "\n"), closes)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
