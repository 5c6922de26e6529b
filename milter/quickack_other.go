//go:build !linux

package milter

import "net"

// quickAcker: TCP_QUICKACK is Linux's (see quickack_linux.go).
func quickAcker(net.Conn) func() { return nil }
