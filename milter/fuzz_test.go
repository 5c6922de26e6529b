package milter

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptConn is a net.Conn that reads a fixed stream and discards what is
// written: an MTA that sends the fuzzer's bytes and then closes.
type scriptConn struct {
	net.Conn
	r       bytes.Reader
	written int
}

func (c *scriptConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error)      { c.written += len(p); return len(p), nil }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzServeConn: whatever bytes an MTA sends, the server reads them as
// packets within maxPacket, hands them to the Milter or refuses them, and
// returns when the stream ends; it does not panic (serveConn recovers a
// panic to log it and end the connection, so the log is checked) and
// writes replies of bounded size.
func FuzzServeConn(f *testing.F) {
	optneg := binary.BigEndian.AppendUint32(nil, 6)
	optneg = binary.BigEndian.AppendUint32(optneg, 0x1ff)
	optneg = binary.BigEndian.AppendUint32(optneg, 0x1fffff)
	var normal []byte
	for _, p := range [][]byte{
		packet(CmdOptNeg, string(optneg)),
		packet(CmdMacro, "Cj\x00mx.test\x00"),
		packet(CmdConnect, "client.example\x00", "4", "\x9c\x40", "192.0.2.1\x00"),
		packet(CmdHelo, "helo.example\x00"),
		packet(CmdMail, "<a@example.com>\x00SIZE=10\x00"),
		packet(CmdRcpt, "<b@example.net>\x00"),
		packet(CmdHeader, "Subject\x00", " hi\x00"),
		packet(CmdEndOfHeaders),
		packet(CmdBody, "body\r\n"),
		packet(CmdEndOfMessage),
		packet(CmdQuitNewConn),
		packet(CmdConnect, "other\x00U"),
		packet(CmdAbort),
		packet(CmdQuit),
	} {
		normal = append(normal, p...)
	}
	f.Add(normal)
	f.Add(normal[:len(normal)/2])
	f.Add([]byte{0, 0, 0, 1, CmdBody})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, CmdOptNeg})
	f.Add(packet(CmdConnect, "x\x006"))
	f.Add(packet(CmdMacro))
	f.Fuzz(func(t *testing.T, stream []byte) {
		var mu sync.Mutex
		var notes []string
		var logs bytes.Buffer
		srv := &Server{
			NewSession: func(*Conn) Milter { return noteMilter{&mu, &notes} },
			Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
			Actions:    testActions, Protocol: testProtocol, SymList: testSymList,
		}
		nc := &scriptConn{}
		nc.r.Reset(stream)
		c := &Conn{ID: 1, nc: nc}
		if !srv.trackConn(c, true) {
			t.Fatal("server refused the connection")
		}
		srv.serveConn(c)
		if strings.Contains(logs.String(), "panicked") {
			t.Fatalf("the server panicked:\n%s", logs.String())
		}
		if srv.Active() != 0 {
			t.Fatalf("%d connections still live after the stream ended", srv.Active())
		}
		// Replies: at most one packet of continue per command, plus the
		// negotiation reply and the final reply's text.
		if limit := 64 + len(stream)*5 + 4096; nc.written > limit {
			t.Fatalf("wrote %d bytes for a stream of %d", nc.written, len(stream))
		}
	})
}
