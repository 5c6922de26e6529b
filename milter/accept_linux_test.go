package milter

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestRawListenerAccepts: a TCP (IPv4, IPv6) or unix listener accepts
// through accept4(2) on its descriptor; the connection is a non-blocking
// *os.File whose addresses are those the net package would give (the
// peer's as the client sees its own; an unnamed unix peer "@", a bound one
// its path), and closing the listener ends a waiting Accept with
// net.ErrClosed and, for unix, removes the socket file as before.
func TestRawListenerAccepts(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, network, addr string
		local               string // unix: the path the client binds
	}{
		{"tcp4", "tcp", "127.0.0.1:0", ""},
		{"tcp6", "tcp", "[::1]:0", ""},
		{"unix", "unix", filepath.Join(dir, "m.sock"), ""},
		{"unix-bound-peer", "unix", filepath.Join(dir, "n.sock"), filepath.Join(dir, "client.sock")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inner, err := net.Listen(tc.network, tc.addr)
			if err != nil {
				if tc.name == "tcp6" {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			ln := newRawListener(inner)
			rl, ok := ln.(*rawListener)
			if !ok {
				t.Fatalf("listener %T not raw", ln)
			}
			defer rl.Close()
			client, nc := dialAccept(t, ln, func() (net.Conn, error) {
				if tc.local != "" {
					return net.DialUnix("unix", &net.UnixAddr{Name: tc.local, Net: "unix"}, &net.UnixAddr{Name: tc.addr, Net: "unix"})
				}
				return net.Dial(tc.network, inner.Addr().String())
			})
			fc, ok := nc.(*fileConn)
			if !ok {
				t.Fatalf("accepted %T", nc)
			}
			if want := client.LocalAddr().String(); nc.RemoteAddr().String() != want {
				t.Errorf("remote address %q, the client is %q", nc.RemoteAddr(), want)
			}
			if nc.RemoteAddr().Network() != client.LocalAddr().Network() || nc.LocalAddr().String() != inner.Addr().String() {
				t.Errorf("addresses %v %v, want %v %v", nc.RemoteAddr(), nc.LocalAddr(), client.LocalAddr(), inner.Addr())
			}
			if tc.network == "unix" {
				// The sockaddr is reused: an unnamed peer after a
				// bound one is still unnamed.
				c2, nc2 := dialAccept(t, ln, func() (net.Conn, error) { return net.Dial("unix", tc.addr) })
				if got := nc2.RemoteAddr().String(); got != c2.LocalAddr().String() {
					t.Errorf("second peer %q, the client is %q", got, c2.LocalAddr())
				}
			}
			if fc.tcp != (tc.network == "tcp") {
				t.Errorf("tcp = %v", fc.tcp)
			}
			// Both ways, through the netpoller.
			if _, err := client.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			var rc rawConn
			rc.reset(nc)
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 4)
			if n, err := rc.Read(buf); err != nil || string(buf[:n]) != "ping" {
				t.Fatalf("read %q, %v", buf[:n], err)
			}
			if _, err := rc.Write([]byte("pong")); err != nil {
				t.Fatal(err)
			}
			client.SetDeadline(time.Now().Add(5 * time.Second))
			if n, err := client.Read(buf); err != nil || string(buf[:n]) != "pong" {
				t.Fatalf("client read %q, %v", buf[:n], err)
			}

			done := make(chan error, 1)
			go func() {
				_, err := ln.Accept()
				done <- err
			}()
			time.Sleep(20 * time.Millisecond)
			rl.Close()
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("Accept on a closed listener: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Accept still waiting after Close")
			}
			if tc.network == "unix" {
				if _, err := os.Stat(tc.addr); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("socket file after Close: %v", err)
				}
			}
		})
	}
}

// dialAccept connects with dial and accepts from ln: both ends, closed
// when the test ends.
func dialAccept(t *testing.T, ln net.Listener, dial func() (net.Conn, error)) (client, server net.Conn) {
	t.Helper()
	client, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// TestCloserClosesSoon: when the MTA quits, the descriptor is closed by the
// closer within closeDelay, or at once when the server shuts down; a
// connection ended after that is closed at once.
func TestCloserClosesSoon(t *testing.T) {
	var mu sync.Mutex
	var conns []*Conn
	srv := &Server{
		NewSession: func(c *Conn) Milter {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			return noteMilter{&sync.Mutex{}, new([]string)}
		},
		Actions: testActions, Protocol: testProtocol, IdleTimeout: 10 * time.Second,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	addr := ln.Addr().String()
	session := func() *fileConn {
		m := dialRawMTA(t, addr, 0x1fffff)
		m.send('Q', nil)
		waitClosed(t, m.c, 5*time.Second)
		m.c.Close()
		mu.Lock()
		defer mu.Unlock()
		fc, ok := conns[len(conns)-1].nc.(*fileConn)
		if !ok {
			t.Fatalf("connection %T, not accepted raw", conns[len(conns)-1].nc)
		}
		return fc
	}
	closedWithin := func(fc *fileConn, d time.Duration) bool {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Millisecond) {
			if fc.closed.Load() {
				return true
			}
		}
		return fc.closed.Load()
	}

	if fc := session(); !closedWithin(fc, 5*time.Second) {
		t.Fatal("descriptor of an ended connection not closed")
	}
	fc := session()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !fc.closed.Load() {
		t.Fatal("descriptor still open after Shutdown")
	}
	srv.closer.mu.Lock()
	pending, running := len(srv.closer.pending), srv.closer.running
	srv.closer.mu.Unlock()
	if pending != 0 || running {
		t.Fatalf("after Shutdown: %d pending, running %v", pending, running)
	}
	// After the closer stopped: at once.
	a, _ := tcpPairOf(t, true)
	srv.closer.close(a)
	if !a.(*fileConn).closed.Load() {
		t.Fatal("closed after the closer stopped: not at once")
	}
}

// TestCloserBounded: past maxPendingClose descriptors waiting, a
// connection is closed at once.
func TestCloserBounded(t *testing.T) {
	var cl closer
	cl.running = true // no run: nothing closes what waits
	cl.kick = make(chan struct{}, 1)
	var conns []net.Conn
	for range maxPendingClose + 1 {
		a, _ := tcpPairOf(t, true)
		conns = append(conns, a)
		cl.close(a)
	}
	for i, nc := range conns {
		closed := nc.(*fileConn).closed.Load()
		if closed != (i == maxPendingClose) {
			t.Fatalf("connection %d closed %v", i, closed)
		}
	}
}

// TestRawListenerNoDelay: a TCP connection from the raw listener has
// TCP_NODELAY set, as the net package sets it on the connections it
// accepts (a reply is one write, sent at once).
func TestRawListenerNoDelay(t *testing.T) {
	t.Parallel()
	server, _ := tcpPairOf(t, true)
	fc, ok := server.(*fileConn)
	if !ok {
		t.Fatalf("accepted %T, want *fileConn", server)
	}
	rc, err := fc.SyscallConn()
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
