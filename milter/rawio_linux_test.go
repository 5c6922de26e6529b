package milter

import (
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestQuickAckAfterReply: once the server has written a reply, the MTA's
// next batches are acknowledged by the kernel as they arrive, before the
// server reads them: an MTA writing with Nagle's algorithm (Postfix) sends
// its content right behind the envelope, without waiting for the server to
// read, find nothing more and acknowledge.
// The client's send queue must be empty (all acknowledged) well within the
// delayed-ACK timer, with the server reading nothing meanwhile.
func TestQuickAckAfterReply(t *testing.T) {
	t.Parallel()
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("raw listener %v", raw), func(t *testing.T) {
			server, client := tcpPairOf(t, raw)
			var rc rawConn
			rc.reset(server)
			client.(*net.TCPConn).SetNoDelay(false)
			buf := make([]byte, 64)
			for round := range 3 {
				// Command and reply: the exchange that puts Linux's
				// delayed ACK in its interactive (ping-pong) mode.
				if _, err := client.Write([]byte("optneg")); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(&rc, buf[:6]); err != nil {
					t.Fatal(err)
				}
				if _, err := rc.Write([]byte("reply")); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(client, buf[:5]); err != nil {
					t.Fatal(err)
				}
				// Two batches with Nagle on: the second leaves only when
				// the first is acknowledged.
				client.Write([]byte("envelope"))
				client.Write([]byte("content"))
				deadline := time.Now().Add(20 * time.Millisecond)
				for outq(t, client) > 0 {
					if time.Now().After(deadline) {
						t.Fatalf("round %d: %d bytes still unacknowledged in the client's socket after 20 ms", round, outq(t, client))
					}
					time.Sleep(200 * time.Microsecond)
				}
				if _, err := io.ReadFull(&rc, buf[:15]); err != nil || string(buf[:15]) != "envelopecontent" {
					t.Fatalf("round %d: read %q, %v", round, buf[:15], err)
				}
			}
		})
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
