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
