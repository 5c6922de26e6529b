package milter

import (
	"net"
	"syscall"
)

// quickAcker returns what the server calls after each reply it writes on a
// TCP connection: setting TCP_QUICKACK, so that the kernel acknowledges
// the MTA's next packets as they arrive instead of holding the ACK for its
// delayed-ACK timer (up to 40 ms on Linux). Postfix writes to its milters
// with Nagle's algorithm on and, under the SMFIP_NR_* flags, sends batches
// of commands that get no reply: each batch waits in Postfix's socket
// until the one before is acknowledged, which without this stalled every
// message behind Postfix by about 40 ms. nil for other connections.
//
// A reply right after a command puts Linux's delayed ACK in its
// interactive ("ping-pong") mode; TCP_QUICKACK ends that mode and sends
// any ACK pending. The kernel may enter the mode again, so it is set after
// every reply.
func quickAcker(nc net.Conn) func() {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	set := func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	}
	return func() { _ = rc.Control(set) }
}
