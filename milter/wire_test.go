package milter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// TestPacketReaderStream: whatever the packet sizes and however the bytes
// are split on the wire, the reader returns exactly the packets that were
// sent; the buffer never holds more than twice what has arrived of a
// packet, and a connection keeps at most keepBufSize between packets.
func TestPacketReaderStream(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var stream []byte
	var want [][]byte
	for _, size := range []int{1, 13, 100, 511, 512, 600, 4000, 20000, 65536, 100000, 3, 70000, 9} {
		p := make([]byte, size)
		for i := range p {
			p[i] = byte(rng.IntN(256))
		}
		want = append(want, p)
		stream = append(binary.BigEndian.AppendUint32(stream, uint32(size)), p...)
	}
	srv, cli := net.Pipe()
	defer srv.Close()
	go func() {
		// Bytes in random pieces, some with several packets.
		wrng := rand.New(rand.NewPCG(3, 4))
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 1+wrng.IntN(9000))
			cli.Write(rest[:n])
			rest = rest[n:]
		}
		cli.Close()
	}()
	r := &packetReader{conn: srv, timeout: 5 * time.Second}
	for i := 0; ; i++ {
		code, data, err := r.next()
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("EOF after %d packets, sent %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := append([]byte{code}, data...); !bytes.Equal(got, want[i]) {
			t.Fatalf("packet %d: %d bytes differ from the %d sent", i, len(got), len(want[i]))
		}
		if cap(r.buf) > 2*max(readBufSize, r.end) {
			t.Fatalf("buffer of %d bytes for a packet ending at %d", cap(r.buf), r.end)
		}
	}
	if cap(r.buf) > keepBufSize {
		t.Errorf("keeps %d bytes after the last packet", cap(r.buf))
	}
}

// TestPacketReaderStalledPacket: 2 bytes of a packet announcing 1 MiB cost
// no more than the first buffer, and the read ends at the idle timeout.
func TestPacketReaderStalledPacket(t *testing.T) {
	t.Parallel()
	srv, cli := net.Pipe()
	defer cli.Close()
	r := &packetReader{conn: srv, timeout: 200 * time.Millisecond}
	go cli.Write(append(binary.BigEndian.AppendUint32(nil, maxPacket), CmdHeader, 'X'))
	_, _, err := r.next()
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
	if cap(r.buf) != readBufSize {
		t.Errorf("buffer of %d bytes for 6 bytes received", cap(r.buf))
	}
}

// TestPacketReaderBadLength: a packet of length 0 or over maxPacket is a
// protocol error, read no further.
func TestPacketReaderBadLength(t *testing.T) {
	t.Parallel()
	for _, n := range []uint32{0, maxPacket + 1, 0xffffffff} {
		srv, cli := net.Pipe()
		go cli.Write(binary.BigEndian.AppendUint32(nil, n))
		r := &packetReader{conn: srv, timeout: time.Second}
		if _, _, err := r.next(); !errors.Is(err, errProtocol) {
			t.Errorf("length %d: err %v, want a protocol error", n, err)
		}
		srv.Close()
		cli.Close()
	}
}

// TestModifierOneWrite: header changes go out with the reply that follows
// them, in one write and in order, CRLF in values sent as LF; changes the
// MTA did not grant are not sent.
func TestModifierOneWrite(t *testing.T) {
	t.Parallel()
	srv, cli := net.Pipe()
	defer cli.Close()
	w := &packetWriter{conn: srv, timeout: 5 * time.Second}
	pkt := func(code byte, data string) []byte {
		return append(append(binary.BigEndian.AppendUint32(nil, uint32(len(data)+1)), code), data...)
	}
	writes := make(chan []byte, 4)
	go func() {
		for {
			b := make([]byte, 1024)
			n, err := cli.Read(b)
			if err != nil {
				close(writes)
				return
			}
			writes <- b[:n]
		}
	}()
	m := &Modifier{w: w, actions: OptAddHeader | OptChangeHeader}
	m.ChangeHeader(1, "Authentication-Results", "")
	m.InsertHeader(0, "X", " y;\r\n\tz")
	m.Quarantine("not granted")
	w.packet(RespAccept)
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	want := append(append(pkt(RespChangeHeader, "\x00\x00\x00\x01Authentication-Results\x00\x00"), pkt(RespInsertHeader, "\x00\x00\x00\x00X\x00 y;\n\tz\x00")...), pkt(RespAccept, "")...)
	if got := <-writes; !bytes.Equal(got, want) {
		t.Fatalf("one write %q, want %q", got, want)
	}
	// A reply with nothing held goes out alone.
	w.packet(RespContinue)
	w.flush()
	if got := <-writes; !bytes.Equal(got, pkt(RespContinue, "")) {
		t.Fatalf("got %q", got)
	}
	srv.Close()
}

// TestMacros: a macro is looked up in the current command's macros, then
// in earlier stages; clearing from MAIL on keeps the connection's.
func TestMacros(t *testing.T) {
	t.Parallel()
	var m Macros
	m.set(CmdConnect, []byte("{client_addr}\x00192.0.2.1\x00j\x00mx\x00"))
	m.set(CmdMail, []byte("i\x00Q1\x00{auth_authen}\x00\x00"))
	m.set(CmdEndOfMessage, []byte("i\x00Q2\x00odd"))
	m.cur = macroStage(CmdMail)
	if got := m.Get("i"); got != "Q1" {
		t.Errorf("at MAIL: i=%q", got)
	}
	if got := m.Get("{client_addr}"); got != "192.0.2.1" {
		t.Errorf("at MAIL: client_addr=%q", got)
	}
	m.cur = macroStage(CmdEndOfMessage)
	if got := m.Get("i"); got != "Q2" {
		t.Errorf("at EOM: i=%q", got)
	}
	if got := m.Get("odd"); got != "" {
		t.Errorf("a name without value: %q", got)
	}
	m.cur = macroStage(CmdConnect)
	if got := m.Get("i"); got != "" {
		t.Errorf("at CONNECT, a later stage's macro: %q", got)
	}
	m.clear(macroStage(CmdMail))
	m.cur = macroStage(CmdEndOfMessage)
	if m.Get("i") != "" || m.Get("j") != "mx" {
		t.Errorf("after clear: i=%q j=%q", m.Get("i"), m.Get("j"))
	}
}

// TestMacrosBounded: a macro packet over maxMacroBytes is not kept (and
// clears what its stage held); a normal one after it is.
func TestMacrosBounded(t *testing.T) {
	t.Parallel()
	var m Macros
	m.cur = macroStage(CmdMail)
	if !m.set(CmdMail, []byte("i\x00Q1\x00")) || m.Get("i") != "Q1" {
		t.Fatal("small packet not kept")
	}
	big := append([]byte("i\x00"), bytes.Repeat([]byte("x"), maxMacroBytes)...)
	if m.set(CmdMail, big) || m.Get("i") != "" {
		t.Fatalf("packet of %d bytes kept", len(big))
	}
	if !m.set(CmdMail, []byte("i\x00Q2\x00")) || m.Get("i") != "Q2" {
		t.Fatal("small packet after a big one not kept")
	}
}

// streamConn is a net.Conn whose reads return a fixed stream in pieces
// of at most the reader's free space: the kernel handing over a batch the
// MTA wrote at once.
type streamConn struct {
	net.Conn
	r bytes.Reader
}

func (c *streamConn) Read(p []byte) (int, error)      { return c.r.Read(p) }
func (c *streamConn) SetReadDeadline(time.Time) error { return nil }

// batch returns n header packets of size bytes each and one body chunk of
// body bytes, framed as an MTA sends them.
func batch(n, size, body int) []byte {
	var out []byte
	for range n {
		out = binary.BigEndian.AppendUint32(out, uint32(size))
		out = append(out, CmdHeader)
		out = append(out, bytes.Repeat([]byte{'h'}, size-1)...)
	}
	out = binary.BigEndian.AppendUint32(out, uint32(body+1))
	out = append(out, CmdBody)
	return append(out, bytes.Repeat([]byte{'b'}, body)...)
}

// TestPacketReaderBatchNotMoved: packets read in one piece are returned
// where they lie; what was read ahead is not moved to the front once per
// packet (a 20 KB header block of small fields would be copied once per
// field).
func TestPacketReaderBatchNotMoved(t *testing.T) {
	t.Parallel()
	stream := batch(30, 100, 20000)
	c := &streamConn{}
	c.r.Reset(stream)
	r := &packetReader{conn: c, timeout: time.Second, buf: make([]byte, 0, keepBufSize)}
	for i := range 31 {
		code, data, err := r.next()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if want := 104 * i; r.start != want {
			t.Fatalf("packet %d at %d in the buffer, want %d: moved", i, r.start, want)
		}
		if i < 30 && (code != CmdHeader || len(data) != 99) || i == 30 && (code != CmdBody || len(data) != 20000) {
			t.Fatalf("packet %d: code %c, %d bytes", i, code, len(data))
		}
	}
	if _, _, err := r.next(); err != io.EOF {
		t.Fatalf("after the batch: %v, want EOF", err)
	}
}

// BenchmarkPacketReaderBatch reads a Postfix content batch (40 header
// fields and a 20 KB body chunk) arriving in one piece.
func BenchmarkPacketReaderBatch(b *testing.B) {
	stream := batch(40, 80, 20000)
	c := &streamConn{}
	r := &packetReader{conn: c, timeout: time.Second, buf: make([]byte, 0, keepBufSize)}
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		c.r.Reset(stream)
		r.buf, r.start, r.end = r.buf[:0], 0, 0
		for {
			if _, _, err := r.next(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}
