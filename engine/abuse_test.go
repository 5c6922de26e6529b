package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/authmilter/authmilter/internal/testsupport/syncbuf"
	"github.com/authmilter/authmilter/milter"
)

// The tests in this file measure the whole process (goroutines, heap), so
// none of them is parallel: Go runs them before every parallel test starts.

// goMilterMaxPacket is the server's limit (maxPacket), as go-milter's on one packet (command byte and
// payload), checked before it allocates (session.go, maxPacketSize).
const goMilterMaxPacket = 1 << 20

// packet frames one milter command: a 4-byte length, the command byte and
// its data.
func packet(code byte, data ...string) []byte {
	n := 1
	for _, d := range data {
		n += len(d)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, code)
	for _, d := range data {
		b = append(b, d...)
	}
	return b
}

// postfixOpening is what Postfix sends for one message, as in
// internal/testsupport/postfixtest's notes, up to and including the header fields.
func postfixOpening() []byte {
	var b []byte
	optneg := binary.BigEndian.AppendUint32(nil, 6)
	optneg = binary.BigEndian.AppendUint32(optneg, 0x1ff)
	optneg = binary.BigEndian.AppendUint32(optneg, 0x1fffff)
	b = append(b, packet(milter.CmdOptNeg, string(optneg))...)
	b = append(b, packet(milter.CmdConnect, "mail.example.com\x00", "4", "\x9c\x40", "192.0.2.10\x00")...)
	b = append(b, packet(milter.CmdHelo, "helo.example.com\x00")...)
	b = append(b, packet(milter.CmdMail, "<alice@example.com>\x00")...)
	b = append(b, packet(milter.CmdRcpt, "<bob@mx.test>\x00")...)
	b = append(b, packet(milter.CmdHeader, "From\x00", " Alice <alice@example.com>\x00")...)
	b = append(b, packet(milter.CmdHeader, "Subject\x00", " test\x00")...)
	return b
}

// dialRaw connects to the milter with a plain TCP connection.
func dialRaw(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*net.TCPConn)
}

// waitClosed reads until the server closes c (EOF or reset) and fails if it
// does not within d.
func waitClosed(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server kept the connection open for %s", d)
		}
		return // io.EOF or ECONNRESET: closed by the server
	}
}

// goodMessage runs a whole well-behaved session and returns the action and
// how long the verdict took.
func goodMessage(t *testing.T, addr string) (*gomilter.Action, time.Duration) {
	t.Helper()
	start := time.Now()
	s := newClientSession(t, addr)
	if _, err := s.Conn("mail.example.com", gomilter.FamilyInet, 40000, "192.0.2.10"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Helo("helo.example.com"); err != nil {
		t.Fatal(err)
	}
	act, _ := sendMessage(t, s, "alice@example.com", msgText("example.com", "", "Hi.\r\n"))
	took := time.Since(start)
	s.Close()
	return act, took
}

// settle waits (bounded) until the server has no connection and the
// process is back to at most want goroutines.
func settle(t *testing.T, srv *milter.Server, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for srv.Active() != 0 || runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("after %s: %d connections active, %d goroutines (want ≤ %d)\n%s",
				d, srv.Active(), runtime.NumGoroutine(), want, buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// captureLibLog routes the standard logger (go-milter's) into a buffer for
// the rest of the test.
func captureLibLog(t *testing.T) *syncbuf.Buffer {
	l := &syncbuf.Buffer{}
	out, flags := log.Writer(), log.Flags()
	log.SetOutput(l)
	t.Cleanup(func() { log.SetOutput(out); log.SetFlags(flags) })
	return l
}

// abuseServer starts a server with a short idle timeout, sends one good
// message to warm everything up, and returns the goroutine baseline.
func abuseServer(t *testing.T, idle time.Duration) (*milter.Server, string, int) {
	srv, addr, base, _ := abuseServerLog(t, idle)
	return srv, addr, base
}

// abuseServerLog is abuseServer, also returning what the Server logs.
func abuseServerLog(t *testing.T, idle time.Duration) (*milter.Server, string, int, *syncbuf.Buffer) {
	t.Helper()
	captureLibLog(t)
	logs := &syncbuf.Buffer{}
	w := newWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := w.engine()
	srv := &milter.Server{
		NewSession:  (&Handler{Engine: func() *Engine { return e }}).NewSession,
		Logger:      slog.New(slog.NewTextHandler(logs, nil)),
		IdleTimeout: idle,
		Actions:     Actions,
		Protocol:    Protocol,
		SymList:     SymList,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	addr := ln.Addr().String()
	if act, _ := goodMessage(t, addr); act.Code != gomilter.ActAccept {
		t.Fatalf("warm-up message: %+v", act)
	}
	settle(t, srv, 1<<20, 5*time.Second)
	return srv, addr, runtime.NumGoroutine(), logs
}

// goroutineSlack allows for runtime and test-framework goroutines that come
// and go; a leak per connection or per message is far above it.
const goroutineSlack = 5

// TestAbuseOversizedPacket: the server refuses a packet over 1 MiB before
// allocating it, logs why and closes the connection without a reply; a header field
// whose packet is exactly 1 MiB is still read and the message judged.
func TestAbuseOversizedPacket(t *testing.T) {
	srv, addr, base, lib := abuseServerLog(t, 10*time.Second)

	for _, size := range []uint32{goMilterMaxPacket + 1, 16 << 20, 1<<32 - 1} {
		c := dialRaw(t, addr)
		hdr := binary.BigEndian.AppendUint32(nil, size)
		if _, err := c.Write(append(hdr, milter.CmdHeader)); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, c, 5*time.Second)
		c.Close()
		if want := fmt.Sprintf("packet of %d bytes, over the limit of 1048576", size); !strings.Contains(lib.String(), want) {
			t.Errorf("the server did not log %q:\n%s", want, lib)
		}
	}

	// A header field whose packet is the largest the server accepts:
	// 'L', name, NUL, value, NUL = 1 MiB.
	s := newClientSession(t, addr)
	if _, err := s.Conn("mail.example.com", gomilter.FamilyInet, 40000, "192.0.2.10"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Helo("helo.example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mail("<alice@example.com>", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rcpt("<bob@mx.test>", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HeaderField("From", " Alice <alice@example.com>"); err != nil {
		t.Fatal(err)
	}
	name := "X-Big"
	value := " " + strings.Repeat("a", goMilterMaxPacket-1-len(name)-1-1-1)
	if n := 1 + len(name) + 1 + len(value) + 1; n != goMilterMaxPacket {
		t.Fatalf("packet of %d bytes, want %d", n, goMilterMaxPacket)
	}
	if act, err := s.HeaderField(name, value); err != nil || act.Code != gomilter.ActContinue {
		t.Fatalf("1 MiB header packet: %+v %v", act, err)
	}
	if _, err := s.HeaderEnd(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BodyChunk([]byte("Hi.\r\n")); err != nil {
		t.Fatal(err)
	}
	mods, act, err := s.End()
	if err != nil {
		t.Fatal(err)
	}
	// The header section is over max_header_bytes (1 MiB): DKIM and DMARC
	// are permerror, which DMARC does not turn into a rejection.
	var ar string
	for _, m := range mods {
		if m.Code == gomilter.ActInsertHeader && m.HeaderName == "Authentication-Results" {
			ar = m.HeaderValue
		}
	}
	if act.Code != gomilter.ActAccept || !strings.Contains(ar, "dmarc=permerror") {
		t.Fatalf("1 MiB header: action %+v, A-R %q; want accept with dmarc=permerror", act, ar)
	}
	s.Close()

	if act, _ := goodMessage(t, addr); act.Code != gomilter.ActAccept {
		t.Fatalf("after oversized packets: %+v", act)
	}
	settle(t, srv, base+goroutineSlack, 10*time.Second)
}

// TestAbuseTruncatedPackets: a packet cut short by a disconnect ends the
// session; one cut short by a silent peer ends it at the idle timeout.
func TestAbuseTruncatedPackets(t *testing.T) {
	const idle = 500 * time.Millisecond
	srv, addr, base := abuseServer(t, idle)

	for _, b := range [][]byte{
		{0, 0},                         // half a length
		{0, 0, 0, 100, 'L', 'F', 'r'},  // 100 bytes announced, 3 sent
		append(postfixOpening(), 0, 0), // a good opening, then half a length
		append(postfixOpening(), packet(milter.CmdBody, strings.Repeat("x", 1000))[:500]...), // half a body chunk
	} {
		// Disconnect right after.
		c := dialRaw(t, addr)
		c.Write(b)
		c.Close()
		// Stay silent: the idle timeout closes it.
		c = dialRaw(t, addr)
		c.Write(b)
		start := time.Now()
		waitClosed(t, c, 10*idle)
		if d := time.Since(start); d < idle/2 {
			t.Errorf("closed after %s, before the idle timeout %s", d, idle)
		}
		c.Close()
	}
	if act, _ := goodMessage(t, addr); act.Code != gomilter.ActAccept {
		t.Fatalf("after truncated packets: %+v", act)
	}
	settle(t, srv, base+goroutineSlack, 10*time.Second)
}

// TestAbuseDisconnects: hundreds of MTA connections that vanish in the
// middle of the header or of the body, at once, some with a reset: the
// messages they started are released (no goroutine left), and a normal
// session meanwhile gets its verdict.
func TestAbuseDisconnects(t *testing.T) {
	srv, addr, base := abuseServer(t, 10*time.Second)
	const n = 200 // of each kind
	opening := postfixOpening()
	midBody := append(append(append([]byte(nil), opening...), packet(milter.CmdEndOfHeaders)...),
		packet(milter.CmdBody, strings.Repeat("body line\r\n", 3000))...)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		for j, b := range [][]byte{opening, midBody} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				c.Write(b)
				if (i+j)%2 == 0 {
					// Let the server reply to some of it first.
					c.SetReadDeadline(time.Now().Add(time.Second))
					io.ReadAtLeast(c, make([]byte, 64), 10)
				}
				if i%3 == 0 {
					c.(*net.TCPConn).SetLinger(0) // RST instead of FIN
				}
				c.Close()
			}()
		}
	}
	act, took := goodMessage(t, addr)
	wg.Wait()
	if act.Code != gomilter.ActAccept {
		t.Fatalf("during the disconnects: %+v", act)
	}
	t.Logf("normal message during %d disconnects: %s", 2*n, took)
	if took > 5*time.Second {
		t.Errorf("normal message took %s during the disconnects", took)
	}
	settle(t, srv, base+goroutineSlack, 20*time.Second)
}

// raiseNoFile makes sure the process may hold n more descriptors, within
// the hard limit; it reports whether that is possible.
func raiseNoFile(t *testing.T, n uint64) bool {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return true
	}
	want := min(n, lim.Max)
	orig := lim
	lim.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Logf("raising RLIMIT_NOFILE to %d: %v", want, err)
		return false
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) })
	return want >= n
}

// TestAbuseIdleConnections: 2000 connections that say nothing, and 200 that
// announce a 1 MiB packet and stall, cost little memory (go-milter would
// allocate the announced 1 MiB at once: idleConn reads packets ahead), do
// not delay a normal session, and are all closed by the idle timeout,
// leaving no goroutine behind.
func TestAbuseIdleConnections(t *testing.T) {
	const (
		idle    = 4 * time.Second
		nIdle   = 2000
		nStall  = 200 // each announces a 1 MiB packet and sends 2 bytes of it
		maxHeap = 16 << 20
	)
	// Both ends are in this process: two descriptors per connection.
	if !raiseNoFile(t, 2*(nIdle+nStall)+256) {
		t.Skipf("RLIMIT_NOFILE cannot reach %d", 2*(nIdle+nStall)+256)
	}
	srv, addr, base := abuseServer(t, idle)
	heap0 := heapInUse()

	start := time.Now()
	conns := make([]net.Conn, 0, nIdle+nStall)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < nIdle; i++ {
		conns = append(conns, dialRaw(t, addr))
	}
	for i := 0; i < nStall; i++ {
		c := dialRaw(t, addr)
		c.Write(append(binary.BigEndian.AppendUint32(nil, goMilterMaxPacket), milter.CmdHeader, 'X'))
		conns = append(conns, c)
	}
	opened := time.Since(start)
	if opened > idle/2 {
		t.Logf("opening took %s: some connections may time out before all are open", opened)
	}

	// A normal session among them.
	act, took := goodMessage(t, addr)
	if act.Code != gomilter.ActAccept {
		t.Fatalf("among idle connections: %+v", act)
	}
	if took > 5*time.Second {
		t.Errorf("normal message took %s among %d idle connections", took, nIdle+nStall)
	}
	active := srv.Active()
	heap1 := heapInUse()
	t.Logf("%d connections opened in %s; normal message in %s; active %d; heap %d KiB → %d KiB (%d KiB per connection)",
		len(conns), opened, took, active, heap0>>10, heap1>>10, (int64(heap1)-int64(heap0))/int64(len(conns))>>10)
	if heap1 > heap0+maxHeap {
		t.Errorf("heap grew by %d MiB with %d idle connections, bound %d MiB", (heap1-heap0)>>20, len(conns), maxHeap>>20)
	}

	// The idle timeout closes every one of them.
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(4 * idle))
	}
	closed := 0
	buf := make([]byte, 16)
	for _, c := range conns {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				closed++
			}
		}
	}
	if closed != len(conns) {
		t.Errorf("%d of %d idle connections closed by the server within %s", closed, len(conns), 4*idle)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = conns[:0]
	settle(t, srv, base+goroutineSlack, 10*time.Second)
	heap2 := heapInUse()
	t.Logf("after the idle timeout: heap %d KiB", heap2>>10)
	if heap2 > heap0+8<<20 {
		t.Errorf("heap %d KiB after every connection closed, %d KiB before", heap2>>10, heap0>>10)
	}
	if act, _ := goodMessage(t, addr); act.Code != gomilter.ActAccept {
		t.Fatalf("after the idle connections: %+v", act)
	}
}

// TestAbuseSlowPacket: a peer that trickles a packet, one byte at a time
// and each before the idle timeout, is still cut off once the packet has
// taken longer than the timeout.
func TestAbuseSlowPacket(t *testing.T) {
	const idle = 500 * time.Millisecond
	srv, addr, base := abuseServer(t, idle)
	c := dialRaw(t, addr)
	defer c.Close()
	b := packet(milter.CmdHeader, "From\x00", strings.Repeat("x", 100)+"\x00")
	start := time.Now()
	closedAt := time.Duration(0)
	for i := 0; i < len(b) && time.Since(start) < 20*idle; i++ {
		if _, err := c.Write(b[i : i+1]); err != nil {
			closedAt = time.Since(start)
			break
		}
		// A read that fails other than by timing out: the server closed.
		c.SetReadDeadline(time.Now().Add(idle / 5))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				closedAt = time.Since(start)
				break
			}
		}
	}
	if closedAt == 0 {
		t.Fatalf("a packet trickled for %s was not cut off (idle timeout %s)", time.Since(start), idle)
	}
	if closedAt > 6*idle {
		t.Errorf("cut off after %s, idle timeout %s", closedAt, idle)
	}
	settle(t, srv, base+goroutineSlack, 10*time.Second)
}
