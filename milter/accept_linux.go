package milter

import (
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// rawListener accepts connections with accept4(2) as a raw system call,
// waiting in Go's netpoller while none is pending, and hands them out as
// non-blocking descriptors in the netpoller (*os.File), as the net package
// does, but with none of the net package's system calls that go through
// the runtime's system-call path.
//
// Why: the first such call after the process was idle wakes the runtime's
// monitor thread (sysmon), which then polls every 20 µs until the process
// is idle again (see rawConn). Accepting through the net package (accept4
// twice, once to find nothing pending and once after the wait, then
// TCP_NODELAY) woke it at the start of every message, and close(2) at the
// end (now batched, see closer): at one session, 2.5 of the daemon's 5
// context switches per message were that thread's, with 15–20 % of its
// CPU.
//
// The net package lends a listener's descriptor only for Control, not to
// wait on, so the listener works on a duplicate of it (File). Close closes
// both. Accept keeps its call's state in the listener: one goroutine
// accepts (Serve's loop).
type rawListener struct {
	net.Listener
	f      *os.File
	rc     syscall.RawConn
	tcp    bool
	local  net.Addr
	closed atomic.Bool

	// The call in progress (kept, not allocated per call).
	fd     int
	sa     syscall.RawSockaddrAny
	salen  uint32
	errno  syscall.Errno
	accept func(fd uintptr) bool
}

// newRawListener returns ln accepting with raw system calls when ln is a
// TCP or unix listener whose descriptor it can wait on, else ln.
func newRawListener(ln net.Listener) net.Listener {
	var tcp bool
	switch ln.(type) {
	case *net.TCPListener:
		tcp = true
	case *net.UnixListener:
	default:
		return ln
	}
	f, err := ln.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		return ln
	}
	rc, err := f.SyscallConn()
	nonblocking := false
	if err == nil {
		rc.Control(func(fd uintptr) {
			fl, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
			nonblocking = e == 0 && fl&syscall.O_NONBLOCK != 0
		})
	}
	if !nonblocking {
		// A blocking accept4 would hold the thread: not for us.
		f.Close()
		return ln
	}
	l := &rawListener{Listener: ln, f: f, rc: rc, tcp: tcp, local: ln.Addr()}
	l.accept = l.acceptRaw
	return l
}

// acceptRaw is one accept4(2); false asks the netpoller to wait.
func (l *rawListener) acceptRaw(fd uintptr) bool {
	for {
		l.salen = uint32(unsafe.Sizeof(l.sa))
		nfd, _, e := syscall.RawSyscall6(syscall.SYS_ACCEPT4, fd, uintptr(unsafe.Pointer(&l.sa)), uintptr(unsafe.Pointer(&l.salen)),
			syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
		switch e {
		case 0:
			l.fd = int(nfd)
			return true
		case syscall.EINTR, syscall.ECONNABORTED:
			// ECONNABORTED: reset before it was accepted; as the net
			// package does, take the next one.
			continue
		case syscall.EAGAIN:
			return false
		}
		l.errno = e
		return true
	}
}

// Accept returns the next connection. Errors are *net.OpError as the net
// package reports them: EMFILE and the like are Temporary, a closed
// listener is net.ErrClosed.
func (l *rawListener) Accept() (net.Conn, error) {
	l.fd, l.errno = -1, 0
	err := l.rc.Read(l.accept)
	if err == nil && l.errno != 0 {
		err = os.NewSyscallError("accept4", l.errno)
	}
	if err != nil {
		if l.closed.Load() {
			err = net.ErrClosed
		}
		return nil, &net.OpError{Op: "accept", Net: l.local.Network(), Addr: l.local, Err: err}
	}
	if l.tcp {
		// As the net package does: a reply is one write, sent at once.
		tcpOptionOn(uintptr(l.fd), syscall.TCP_NODELAY)
	}
	return &fileConn{File: os.NewFile(uintptr(l.fd), "milter connection"), tcp: l.tcp, local: l.local, remote: l.remote()}, nil
}

// Close closes the duplicate, ending a wait in Accept, and the listener.
func (l *rawListener) Close() error {
	l.closed.Store(true)
	l.f.Close()
	return l.Listener.Close()
}

// sockoptOn is the argument of a boolean socket option set on.
var sockoptOn int32 = 1

// tcpOptionOn sets the boolean TCP option opt on the socket fd with a raw
// setsockopt(2). A failure is not reported: the options set this way
// (TCP_NODELAY, TCP_QUICKACK) only change when segments leave.
func tcpOptionOn(fd uintptr, opt int) {
	syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, syscall.IPPROTO_TCP, uintptr(opt),
		uintptr(unsafe.Pointer(&sockoptOn)), unsafe.Sizeof(sockoptOn), 0)
}

// remote is the peer's address from the accepted sockaddr, as the net
// package would give it (an unnamed unix peer: "@").
func (l *rawListener) remote() net.Addr {
	switch l.sa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&l.sa))
		return &net.TCPAddr{IP: netip.AddrFrom4(p.Addr).AsSlice(), Port: netPort(&p.Port)}
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&l.sa))
		a := &net.TCPAddr{IP: netip.AddrFrom16(p.Addr).AsSlice(), Port: netPort(&p.Port)}
		if p.Scope_id != 0 {
			if ifi, err := net.InterfaceByIndex(int(p.Scope_id)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a
	case syscall.AF_UNIX:
		p := (*syscall.RawSockaddrUnix)(unsafe.Pointer(&l.sa))
		// As the net package reads it: a leading NUL (an abstract
		// name, or none) shows as "@", the rest up to a NUL follows.
		// Only salen bytes are this peer's (the sockaddr is reused).
		path := p.Path[:max(0, min(int(l.salen)-int(unsafe.Offsetof(p.Path)), len(p.Path)))]
		name := []byte{'@'}
		if len(path) > 0 && path[0] != 0 {
			name[0] = byte(path[0])
		}
		for i := 1; i < len(path) && path[i] != 0; i++ {
			name = append(name, byte(path[i]))
		}
		return &net.UnixAddr{Net: "unix", Name: string(name)}
	}
	return &net.UnixAddr{Net: "unix"}
}

// netPort reads a port stored in network byte order.
func netPort(p *uint16) int {
	b := (*[2]byte)(unsafe.Pointer(p))
	return int(b[0])<<8 | int(b[1])
}

// fileConn is an accepted connection as an *os.File in the netpoller.
type fileConn struct {
	*os.File
	tcp           bool
	local, remote net.Addr
	closed        atomic.Bool
}

// Close closes the descriptor; a read or write waiting on it then fails
// with net.ErrClosed (rawConn), as on a net.Conn.
func (c *fileConn) Close() error {
	c.closed.Store(true)
	return c.File.Close()
}

func (c *fileConn) LocalAddr() net.Addr  { return c.local }
func (c *fileConn) RemoteAddr() net.Addr { return c.remote }

// CloseWrite shuts down the sending side, as net.TCPConn's does.
func (c *fileConn) CloseWrite() error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Shutdown(int(fd), syscall.SHUT_WR) }); err != nil {
		return err
	}
	if serr != nil {
		return os.NewSyscallError("shutdown", serr)
	}
	return nil
}
