//go:build !linux

package milter

import "net"

// rawConn is the connection itself where raw system calls are not used
// (see rawio_linux.go).
type rawConn struct {
	net.Conn
}

func (c *rawConn) reset(nc net.Conn) { c.Conn = nc }

func rawUsed(c *rawConn) bool { return false }

// newRawListener is ln itself where accept is not raw (accept_linux.go).
func newRawListener(ln net.Listener) net.Listener { return ln }
