package milter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	return tcpPairOf(t, false)
}

// tcpPairOf returns both ends of a loopback TCP connection, the server's
// accepted by the server's own listener (newRawListener) when raw.
func tcpPairOf(t *testing.T, raw bool) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if raw {
		ln = newRawListener(ln)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		done <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-done
	if server == nil {
		t.FailNow()
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// TestRawConnStream: bytes written through a rawConn arrive whole on the
// other end and bytes read through one are exactly those sent, in both
// directions, with writes larger than the socket buffers (so the write
// waits for room and resumes part way) and reads of any size; the peer's
// close is io.EOF.
func TestRawConnStream(t *testing.T) {
	t.Parallel()
	bothListeners(t, testRawConnStream)
}

// bothListeners runs test in parallel on connections accepted by the net
// package and by the server's own listener (newRawListener).
func bothListeners(t *testing.T, test func(t *testing.T, raw bool)) {
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("rawListener=%v", raw), func(t *testing.T) {
			t.Parallel()
			test(t, raw)
		})
	}
}

func testRawConnStream(t *testing.T, raw bool) {
	srv, cli := tcpPairOf(t, raw)
	var rc rawConn
	rc.reset(srv)
	if runtime.GOOS == "linux" && !rawUsed(&rc) {
		t.Fatal("a TCP connection is not read through its descriptor")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	out := make([]byte, 8<<20)
	for i := range out {
		out[i] = byte(rng.IntN(256))
	}
	// Out: one 8 MiB write against a reader that drains slowly.
	got := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 3000)
		for {
			n, err := cli.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
			if b.Len() < 1<<20 {
				time.Sleep(time.Millisecond)
			}
		}
		got <- b.Bytes()
	}()
	n, err := rc.Write(out)
	if err != nil || n != len(out) {
		t.Fatalf("Write: %d of %d bytes, %v", n, len(out), err)
	}
	srv.(interface{ CloseWrite() error }).CloseWrite()
	if b := <-got; !bytes.Equal(b, out) {
		t.Fatalf("the peer got %d bytes, not the %d written", len(b), len(out))
	}
	// In: pieces of random sizes, read into buffers of random sizes.
	go func() {
		for rest := out; len(rest) > 0; {
			k := min(len(rest), 1+rng.IntN(70000))
			cli.Write(rest[:k])
			rest = rest[k:]
		}
		cli.Close()
	}()
	var in bytes.Buffer
	buf := make([]byte, 100000)
	rrng := rand.New(rand.NewPCG(7, 8))
	for {
		n, err := rc.Read(buf[:1+rrng.IntN(len(buf))])
		in.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read after %d bytes: %v", in.Len(), err)
		}
	}
	if !bytes.Equal(in.Bytes(), out) {
		t.Fatalf("read %d bytes, not the %d sent", in.Len(), len(out))
	}
}

// TestRawConnErrors: a read past the deadline is a timeout
// (os.ErrDeadlineExceeded, net.Error.Timeout), a read on a connection
// closed meanwhile is net.ErrClosed, and a write to a peer that has gone
// fails rather than hangs; each error names the operation and the
// addresses as the net package's would.
func TestRawConnErrors(t *testing.T) {
	t.Parallel()
	bothListeners(t, testRawConnErrors)
}

func testRawConnErrors(t *testing.T, raw bool) {
	srv, cli := tcpPairOf(t, raw)
	var rc rawConn
	rc.reset(srv)
	srv.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := rc.Read(make([]byte, 10))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" || oe.Addr.String() != cli.LocalAddr().String() {
		t.Fatalf("read error %#v does not name the read and the peer", err)
	}
	srv.SetReadDeadline(time.Time{})

	go func() {
		time.Sleep(20 * time.Millisecond)
		srv.Close()
	}()
	if _, err := rc.Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a connection closed meanwhile: %v", err)
	}

	srv2, cli2 := tcpPairOf(t, raw)
	rc.reset(srv2)
	cli2.(*net.TCPConn).SetLinger(0)
	cli2.Close() // RST
	time.Sleep(20 * time.Millisecond)
	srv2.SetWriteDeadline(time.Now().Add(5 * time.Second))
	var werr error
	for range 100 {
		if _, werr = rc.Write(make([]byte, 64<<10)); werr != nil {
			break
		}
	}
	if werr == nil || errors.Is(werr, os.ErrDeadlineExceeded) {
		t.Fatalf("write to a reset connection: %v", werr)
	}
	if !errors.As(werr, &oe) || oe.Op != "write" {
		t.Fatalf("write error %#v does not name the write", werr)
	}
}

// TestRawConnFallback: a connection without a descriptor (net.Pipe) is
// read and written through its own methods.
func TestRawConnFallback(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var rc rawConn
	rc.reset(a)
	go b.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(&rc, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// TestQuickAckForNagleMTA: an MTA that writes with Nagle's algorithm on, as
// Postfix does, and sends a batch of commands that get no reply (SMFIP_NR_*)
// and then the rest of the message gets its answer at once: the server
// acknowledges what it read before waiting, so the second batch is not held
// in the MTA's socket for the server's delayed-ACK timer (40 ms on Linux,
// once per message). Five messages on one connection: with the ACK delayed
// they take at least 200 ms between the second batch and the reply; the
// bound is 150 ms.
func TestQuickAckForNagleMTA(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_QUICKACK is Linux's")
	}
	t.Parallel()
	addr, _, _, _ := startNoteServer(t)
	c := dialRaw(t, addr)
	defer c.Close()
	if err := c.SetNoDelay(false); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	optneg := binary.BigEndian.AppendUint32(nil, 6)
	optneg = binary.BigEndian.AppendUint32(optneg, 0x1ff)
	optneg = binary.BigEndian.AppendUint32(optneg, 0x1fffff)
	if _, err := c.Write(packet(CmdOptNeg, string(optneg))); err != nil {
		t.Fatal(err)
	}
	r := &packetReader{conn: c, timeout: 20 * time.Second}
	code, data, err := r.next()
	if err != nil || code != CmdOptNeg || len(data) < 12 || OptProtocol(binary.BigEndian.Uint32(data[8:]))&NoReplyFlags != NoReplyFlags {
		t.Fatalf("negotiation: %q %x %v", code, data, err)
	}
	// The first message's envelope batch opens the SMTP session too.
	envelope := append(packet(CmdConnect, "mail.example.com\x00", "4", "\x9c\x40", "192.0.2.10\x00"), packet(CmdHelo, "helo.example.com\x00")...)
	envelope = append(envelope, packet(CmdMail, "<alice@example.com>\x00")...)
	envelope = append(envelope, packet(CmdRcpt, "<bob@mx.test>\x00")...)
	next := append(packet(CmdMail, "<carol@example.com>\x00"), packet(CmdRcpt, "<bob@mx.test>\x00")...)
	var content []byte
	content = append(content, packet(CmdHeader, "From\x00", " Alice <alice@example.com>\x00")...)
	content = append(content, packet(CmdEndOfHeaders)...)
	content = append(content, packet(CmdBody, "hello\r\n")...)
	content = append(content, packet(CmdEndOfMessage)...)
	var waited time.Duration
	for i := range 5 {
		if _, err := c.Write(envelope); err != nil {
			t.Fatal(err)
		}
		envelope = next
		// Let the server read the batch and go back to waiting, its ACK
		// pending, as it does while Postfix's smtpd hands the message to
		// cleanup.
		time.Sleep(5 * time.Millisecond)
		start := time.Now()
		if _, err := c.Write(content); err != nil {
			t.Fatal(err)
		}
		if code, data, err := r.next(); err != nil || code != RespReplyCode {
			t.Fatalf("message %d: reply %q %q, %v", i, code, data, err)
		}
		waited += time.Since(start)
	}
	if waited > 150*time.Millisecond {
		t.Errorf("five replies took %v after the content was written: the MTA's writes waited for delayed ACKs", waited)
	}
}
