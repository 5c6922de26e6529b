package milter

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
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

// TestQuickAckAfterReply: once the server has written a reply, the MTA's
// next batches are acknowledged by the kernel as they arrive, before the
// server reads them: an MTA writing with Nagle's algorithm (Postfix) sends
// its content right behind the envelope, without waiting for the server to
// read, find nothing more and acknowledge.
// The client's send queue must be empty (all acknowledged) well within the
// delayed-ACK timer, with the server reading nothing meanwhile.
func TestQuickAckAfterReply(t *testing.T) {
	t.Parallel()
	server, client := tcpPair(t)
	w := &packetWriter{conn: server, timeout: 5 * time.Second, ack: quickAcker(server)}
	if w.ack == nil {
		t.Fatal("no quickAcker for a TCP connection")
	}
	client.(*net.TCPConn).SetNoDelay(false)
	buf := make([]byte, 64)
	for round := range 3 {
		// Command and reply: the exchange that puts Linux's delayed ACK
		// in its interactive (ping-pong) mode.
		if _, err := client.Write([]byte("optneg")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(server, buf[:6]); err != nil {
			t.Fatal(err)
		}
		w.packet(RespContinue)
		if err := w.flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(client, buf[:5]); err != nil {
			t.Fatal(err)
		}
		// Two batches with Nagle on: the second leaves only when the
		// first is acknowledged.
		client.Write([]byte("envelope"))
		client.Write([]byte("content"))
		deadline := time.Now().Add(20 * time.Millisecond)
		for outq(t, client) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d bytes still unacknowledged in the client's socket after 20 ms", round, outq(t, client))
			}
			time.Sleep(200 * time.Microsecond)
		}
		if _, err := io.ReadFull(server, buf[:15]); err != nil || string(buf[:15]) != "envelopecontent" {
			t.Fatalf("round %d: read %q, %v", round, buf[:15], err)
		}
	}
}

// outq returns the bytes c's socket has sent or holds without their ACK
// (SIOCOUTQ, which is TIOCOUTQ).
func outq(t *testing.T, c net.Conn) int {
	t.Helper()
	sc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int32
	var errno syscall.Errno
	sc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
	})
	if errno != 0 {
		t.Fatal(errno)
	}
	return int(n)
}

// TestQuickAckForNagleMTA: an MTA that writes with Nagle's algorithm on, as
// Postfix does, and sends a batch of commands that get no reply (SMFIP_NR_*)
// and then the rest of the message gets its answer at once: the server
// sets TCP_QUICKACK after each reply, so the second batch is not held
// in the MTA's socket for the server's delayed-ACK timer (40 ms on Linux,
// once per message). Five messages on one connection: with the ACK delayed
// they take at least 200 ms between the second batch and the reply; the
// bound is 150 ms.
func TestQuickAckForNagleMTA(t *testing.T) {
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

// acceptedListener passes on each connection it accepts.
type acceptedListener struct {
	net.Listener
	accepted chan net.Conn
}

func (l acceptedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted <- c
	}
	return c, err
}

// TestServerNoDelay: the connections the server serves have TCP_NODELAY
// set (the net package's default for TCP), so that a reply, one write, is
// sent at once instead of waiting for the MTA's ACK of the last one.
func TestServerNoDelay(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	al := acceptedListener{ln, make(chan net.Conn, 1)}
	srv := &Server{NewSession: func(*Conn) Milter { return noteMilter{&sync.Mutex{}, new([]string)} }}
	go srv.Serve(al)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	m := dialRawMTA(t, ln.Addr().String(), 0x1fffff)
	defer m.c.Close()
	rc, err := (<-al.accepted).(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY) })
	if gerr != nil || v == 0 {
		t.Errorf("TCP_NODELAY = %d, %v; want it set", v, gerr)
	}
}
