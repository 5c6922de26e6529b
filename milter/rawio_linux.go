package milter

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawConn reads and writes a connection's socket with raw system calls on
// the descriptor the net package lends it (syscall.RawConn), waiting in
// Go's netpoller, under the connection's deadlines, only when the socket
// has nothing to read or no room to write, as conn.Read and conn.Write do.
//
// Why: conn.Read and conn.Write enter the system call through the
// runtime's syscall path, and the first such call after the process has
// been idle wakes the runtime's monitor thread (sysmon), which then polls
// every 20 µs until the process is idle again. A milter at one session
// goes idle between every few packets of the MTA, so that thread woke
// about five times per message, each a context switch, which on a
// virtual machine costs more than the work it interrupts. read(2) and
// write(2) on a non-blocking socket never block, so the raw path is safe:
// it never holds the thread.
//
// On TCP, before waiting for more, the ACK of what was read is sent at
// once (TCP_QUICKACK) instead of up to 40 ms later (Linux's delayed ACK).
// Postfix writes to its milters with Nagle's algorithm on and, under the
// SMFIP_NR_* flags, sends batches of commands that get no reply (connect
// to RCPT when DATA starts, then the content): a batch waits in its socket
// until the previous one is acknowledged, and with nothing to send back
// the milter's kernel would hold that ACK for its delayed-ACK timer. A
// Postfix transaction through authmilter took 48 ms against 8 without a
// milter: it stalled once per message on exactly this.
//
// A reply written also ends the kernel's interactive ("ping-pong")
// delayed-ACK mode, which a reply right after a command starts
// (TCP_QUICKACK after the write): the MTA's next batches are then
// acknowledged as they arrive, so Postfix's content follows its envelope
// at once instead of after the milter has read the envelope, found
// nothing more and acknowledged it (a read and a wait less when the
// milter is the faster side; the acknowledgement before waiting stays
// for when the kernel delays ACKs all the same).
type rawConn struct {
	net.Conn
	rc syscall.RawConn // nil: through Conn
	// tcp: the connection is TCP; unacked: data was read since the last
	// TCP_QUICKACK.
	tcp, unacked bool

	// The call in progress, for the functions below (kept, not
	// allocated per call).
	b       []byte
	n       int
	errno   syscall.Errno
	readFn  func(fd uintptr) bool
	writeFn func(fd uintptr) bool
}

// reset points c at nc, raw when nc offers its descriptor.
func (c *rawConn) reset(nc net.Conn) {
	c.Conn, c.rc, c.unacked = nc, nil, false
	if nc == nil {
		return
	}
	switch t := nc.(type) {
	case *net.TCPConn:
		c.tcp = true
	case *fileConn:
		c.tcp = t.tcp
	default:
		c.tcp = false
	}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
		}
	}
	if c.readFn == nil {
		c.readFn = c.readRaw
		c.writeFn = c.writeRaw
	}
}

// readRaw is one read(2); false asks the netpoller to wait for data.
func (c *rawConn) readRaw(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(c.b))), uintptr(len(c.b)))
		switch e {
		case 0:
			c.n = int(n)
			c.unacked = c.unacked || (c.tcp && n > 0)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if c.unacked {
				// Acknowledge what was read before waiting (see
				// rawConn).
				quickAck(fd)
				c.unacked = false
			}
			return false
		}
		c.errno = e
		return true
	}
}

// quickAck sets TCP_QUICKACK on the socket fd: a pending ACK goes out now
// and the kernel leaves its interactive delayed-ACK mode.
func quickAck(fd uintptr) { tcpOptionOn(fd, syscall.TCP_QUICKACK) }

// writeRaw writes what is left of c.b; false asks the netpoller to wait
// for room.
func (c *rawConn) writeRaw(fd uintptr) bool {
	for c.n < len(c.b) {
		rest := c.b[c.n:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(rest))), uintptr(len(rest)))
		switch e {
		case 0:
			c.n += int(n)
			if c.n == len(c.b) && c.tcp {
				// The reply is out (and carried the ACK of what was
				// read): acknowledge what comes next at once (see
				// rawConn).
				quickAck(fd)
				c.unacked = false
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.errno = e
			return true
		}
	}
	return true
}

func (c *rawConn) Read(b []byte) (int, error) {
	if c.rc == nil {
		return c.Conn.Read(b)
	}
	if len(b) == 0 {
		return 0, nil
	}
	c.b, c.n, c.errno = b, 0, 0
	n, err := c.result("read", c.rc.Read(c.readFn))
	if err == nil && n == 0 {
		return 0, io.EOF
	}
	return n, err
}

func (c *rawConn) Write(b []byte) (int, error) {
	if c.rc == nil {
		return c.Conn.Write(b)
	}
	c.b, c.n, c.errno = b, 0, 0
	return c.result("write", c.rc.Write(c.writeFn))
}

// result ends a raw call: the bytes it moved, and the net package's error
// (err) or the call's own (c.errno) as conn.Read and conn.Write report them.
// A failed read has moved nothing (readRaw sets c.n only on success).
func (c *rawConn) result(op string, err error) (int, error) {
	n, errno := c.n, c.errno
	c.b = nil
	switch {
	case err != nil:
		return n, c.opError(op, err)
	case errno != 0:
		return n, c.opError(op, os.NewSyscallError(op, errno))
	}
	return n, nil
}

// opError reports err as the net package would for conn.Read or
// conn.Write; the net package's own error (a deadline, a closed
// connection) keeps its cause, so errors.Is(err, os.ErrDeadlineExceeded)
// and errors.Is(err, net.ErrClosed) hold as before (a closed fileConn's
// "use of closed file" is reported as net.ErrClosed too).
func (c *rawConn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	if fc, ok := c.Conn.(*fileConn); ok && fc.closed.Load() {
		err = net.ErrClosed
	}
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// rawUsed reports whether c reads and writes with raw system calls.
func rawUsed(c *rawConn) bool { return c.rc != nil }
