package milter

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	gomilter "github.com/emersion/go-milter"
)

// Server accepts milter connections from an MTA. Each connection gets its
// own go-milter Server whose NewMilter closure holds the connection's facts
// (client address, HELO), because go-milter calls NewMilter again after
// every final response and the new Milter never sees Connect or Helo: this
// way the second message on an SMTP connection keeps them whatever the
// first one's verdict.
type Server struct {
	// NewSession returns the handler of one MTA connection.
	NewSession func(c *Conn) gomilter.Milter
	// Logger receives connection-level events.
	Logger *slog.Logger
	// IdleTimeout bounds the wait for the MTA's next command and the time
	// to receive it whole (default 5 min, more than Postfix's
	// milter_content_timeout).
	IdleTimeout time.Duration
	// Actions and Protocol are negotiated with the MTA. Of the SMFIP_NR_*
	// flags in Protocol, the server grants those the MTA offers
	// (Conn.NoReply); the Milter must then return a nil response to those
	// commands (go-milter sends none for nil).
	Actions  gomilter.OptAction
	Protocol gomilter.OptProtocol
	// SymList requests macros per stage.
	SymList map[gomilter.Stage][]string

	nextID   atomic.Uint64
	bufs     bufPool // read buffers of finished packets and connections
	mu       sync.Mutex
	conns    map[*Conn]struct{}
	closing  bool
	listener []net.Listener
	wg       sync.WaitGroup
}

// Conn is one MTA connection: the facts that survive across its messages.
type Conn struct {
	ID     uint64
	Remote string // the MTA's address
	// Set by the session handler; read by the server only through Busy.
	busy atomic.Bool
	nc   net.Conn

	// The SMTP client's facts, set by the session at Connect and HELO and
	// read by the sessions of later messages on the same connection.
	mu      sync.Mutex
	client  clientFacts
	cleanup func() // releases the message in progress, if any

	// noReply holds the SMFIP_NR_* flags in effect (see idleConn.Write):
	// the commands the MTA sends without waiting for a reply. Written and
	// read only by the connection's go-milter goroutine.
	noReply gomilter.OptProtocol
}

// NoReplyFlags are the SMFIP_NR_* protocol flags the server asks for: for
// each, the MTA does not wait for a reply to that command and the milter
// sends none. Not SMFIP_NR_DATA and SMFIP_NR_UNKN: go-milter answers DATA
// and unknown commands itself (which SMFIP_NODATA and SMFIP_NOUNKNOWN keep
// the MTA from sending).
const NoReplyFlags = gomilter.OptNoConnReply | gomilter.OptNoHeloReply | gomilter.OptNoMailReply |
	gomilter.OptNoRcptReply | gomilter.OptNoEOHReply | gomilter.OptNoBodyReply | gomilter.OptNoHeaderReply

// clientFacts are what an SMTP connection tells about its client.
type clientFacts struct {
	ip   netip.Addr
	name string
	helo string
}

func (c *Conn) facts() clientFacts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client
}

func (c *Conn) setFacts(f func(*clientFacts)) {
	c.mu.Lock()
	f(&c.client)
	c.mu.Unlock()
}

// setCleanup registers what to release if the connection ends in the middle
// of a message (nil when no message is in progress).
func (c *Conn) setCleanup(f func()) {
	c.mu.Lock()
	c.cleanup = f
	c.mu.Unlock()
}

func (c *Conn) runCleanup() {
	c.mu.Lock()
	f := c.cleanup
	c.cleanup = nil
	c.mu.Unlock()
	if f != nil {
		f()
	}
}

// NoReply returns the SMFIP_NR_* flags granted to the MTA: the commands
// to which the connection's Milter must return a nil response. Call it
// from the Milter's methods (the connection's goroutine).
func (c *Conn) NoReply() gomilter.OptProtocol { return c.noReply }

// SetBusy marks the connection as inside a message (from MAIL FROM to the
// end-of-message reply), so that a graceful shutdown waits for it.
func (c *Conn) SetBusy(b bool) { c.busy.Store(b) }

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("milter: server closed")

// Serve accepts connections on ln until Shutdown is called.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if s.conns == nil {
		s.conns = make(map[*Conn]struct{})
	}
	s.listener = append(s.listener, ln)
	s.mu.Unlock()

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			if isTemporaryAccept(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logger().Warn("accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := &Conn{ID: s.nextID.Add(1), Remote: nc.RemoteAddr().String()}
		c.nc = &idleConn{Conn: nc, timeout: s.idleTimeout(), owner: c, pool: &s.bufs}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// isTemporaryAccept reports accept errors worth retrying (EMFILE, ENFILE,
// ECONNABORTED), which the net package still flags as temporary.
func isTemporaryAccept(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return 5 * time.Minute
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) serveConn(c *Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	ms := &gomilter.Server{
		NewMilter: func() gomilter.Milter { return s.NewSession(c) },
		Actions:   s.Actions,
		Protocol:  s.Protocol,
		SymList:   s.SymList,
	}
	// go-milter's Serve loops on Accept; a one-connection listener hands it
	// this connection and then reports closed once the session has ended.
	ln := newOneConnListener(c.nc)
	_ = ms.Serve(ln)
	// Serve returns once go-milter's session has closed the connection,
	// after its last Read: the read buffer can serve another connection.
	if ic, ok := c.nc.(*idleConn); ok {
		ic.release()
	}
	// go-milter says nothing to the Milter when the MTA goes away in the
	// middle of a message: release what that message holds.
	c.runCleanup()
	c.SetBusy(false)
}

// Shutdown stops accepting, closes connections that are between messages,
// waits for messages in flight, and after ctx is done closes the rest.
// Postfix applies milter_default_action to what it could not finish.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for _, ln := range s.listener {
		ln.Close()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeIdle(false)
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			s.closeIdle(true)
			<-done
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (s *Server) closeIdle(all bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if all || !c.busy.Load() {
			c.nc.Close()
		}
	}
}

// Active returns the number of open MTA connections.
func (s *Server) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// maxPacket is go-milter's limit on one packet, command byte included
// (maxPacketSize in its session.go): it refuses longer ones.
const maxPacket = 1 << 20

// idleConn hands go-milter one whole packet at a time, read ahead under one
// deadline: an MTA that goes silent, or a peer that trickles a packet byte
// by byte, cannot hold a session longer than the timeout. go-milter
// allocates the announced length of a packet as soon as it has read the
// length; reading ahead first means memory follows the bytes that actually
// arrived (5 bytes announcing 1 MiB no longer cost 1 MiB per connection).
//
// The connection reads into one buffer that it keeps from packet to packet
// (taken at the first packet, readBufSize bytes, growing at most to twice
// what has arrived): one read usually brings a packet's length and payload
// together, often the next packets too (with SMFIP_NR_* the MTA sends
// header fields without waiting), instead of a read for the length, one for
// the payload and a new buffer per packet. A buffer grown past keepBufSize
// for a big packet is dropped once that packet has been read; buffers up to
// that size come from and go back to the Server's bufPool.
type idleConn struct {
	net.Conn
	timeout time.Duration
	// buf[off:end] is the rest of the packet go-milter is reading;
	// buf[end:] was read ahead (the start of the next packets).
	buf      []byte
	off, end int
	// readDL and writeDL are the deadlines last set; see deadline.
	readDL, writeDL time.Time

	// owner receives the SMFIP_NR_* flags negotiated; offered is what
	// the MTA's last option negotiation offered, until answered.
	owner    *Conn
	offered  gomilter.OptProtocol
	offering bool

	pool *bufPool // where buffers come from and go back to (nil: allocated)
	// mods holds the modification packets written since the last reply,
	// sent with the reply that follows them (see Write).
	mods []byte
}

const (
	// readBufSize is a connection's first buffer: a macro packet, a
	// header field or a command fits.
	readBufSize = 512
	// keepBufSize bounds the buffer a connection keeps between packets:
	// one of Postfix's body chunks (65535 bytes) with its length and
	// command byte.
	keepBufSize = 64 << 10
)

func (c *idleConn) Read(p []byte) (int, error) {
	if c.off == c.end {
		if err := c.readPacket(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.buf[c.off:c.end])
	c.off += n
	return n, nil
}

// readPacket makes the next packet available as buf[off:end]: its 4-byte
// length and, when the length is one go-milter accepts, its payload as it
// arrives. Any other length is passed on alone for go-milter to refuse.
func (c *idleConn) readPacket() error {
	// Drop the packet go-milter has read; keep what was read ahead.
	rest := c.buf[c.end:]
	switch {
	case c.buf == nil:
		c.buf = c.pool.get(readBufSize)
	case cap(c.buf) > keepBufSize:
		old := c.buf
		c.buf = append(c.pool.get(max(readBufSize, len(rest))), rest...)
		c.pool.put(old)
	default:
		c.buf = c.buf[:copy(c.buf, rest)]
	}
	c.off, c.end = 0, 0
	if err := c.fill(4); err != nil {
		if err == io.ErrUnexpectedEOF && len(c.buf) == 0 {
			err = io.EOF
		}
		return err
	}
	length := int(binary.BigEndian.Uint32(c.buf))
	if length == 0 || length > maxPacket {
		c.end = 4
		return nil
	}
	if err := c.fill(4 + length); err != nil {
		return err
	}
	c.end = 4 + length
	// SMFIC_OPTNEG: version, actions, protocol flags offered.
	if c.buf[4] == byte(gomilter.CodeOptNeg) && length >= 13 {
		c.offered = gomilter.OptProtocol(binary.BigEndian.Uint32(c.buf[13:17]))
		c.offering = true
	}
	return nil
}

// fill reads until buf holds at least n bytes, under the idle deadline,
// growing buf (to at most twice what has arrived, and not past n) only when
// it is full.
func (c *idleConn) fill(n int) error {
	armed := false
	for len(c.buf) < n {
		if !armed {
			c.readDL = c.deadline(c.readDL, c.Conn.SetReadDeadline)
			armed = true
		}
		if len(c.buf) == cap(c.buf) {
			grown := c.pool.get(min(n, 2*cap(c.buf)))
			grown = append(grown, c.buf...)
			c.pool.put(c.buf)
			c.buf = grown
		}
		m, err := c.Conn.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+m]
		if err != nil && len(c.buf) < n {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// release hands the buffer back to the pool; the connection reads no more.
func (c *idleConn) release() {
	c.pool.put(c.buf)
	c.buf, c.off, c.end = nil, 0, 0
}

// bufPool keeps read buffers between packets and connections, in classes
// of readBufSize<<i bytes up to keepBufSize, a few of each: a connection
// that grows its buffer for a body chunk takes one of the next class and
// gives back the one it had, instead of allocating both. It holds at most
// bufPoolDepth buffers per class (about 2 MiB in all).
type bufPool struct {
	classes [bufClasses]chan []byte
	once    sync.Once
}

const (
	bufClasses   = 8 // 512 B … 64 KiB
	bufPoolDepth = 16
)

func (p *bufPool) init() {
	for i := range p.classes {
		p.classes[i] = make(chan []byte, bufPoolDepth)
	}
}

// class returns the class of a buffer of capacity n, or -1 when n is not a
// class size.
func bufClass(n int) int {
	for i := 0; i < bufClasses; i++ {
		if n == readBufSize<<i {
			return i
		}
	}
	return -1
}

// get returns an empty buffer of capacity at least n: a class size when n
// is at most keepBufSize (taken from the pool when one is there), else n.
func (p *bufPool) get(n int) []byte {
	if n > keepBufSize {
		return make([]byte, 0, n)
	}
	size := readBufSize
	for size < n {
		size <<= 1
	}
	if p != nil {
		p.once.Do(p.init)
		select {
		case b := <-p.classes[bufClass(size)]:
			return b[:0]
		default:
		}
	}
	return make([]byte, 0, size)
}

// put gives b back, if it is of a class size and the class has room.
func (p *bufPool) put(b []byte) {
	if p == nil {
		return
	}
	i := bufClass(cap(b))
	if i < 0 {
		return
	}
	p.once.Do(p.init)
	select {
	case p.classes[i] <- b[:0]:
	default:
	}
}

// deadline sets the connection's deadline (through set) to now plus the
// idle timeout, unless the one set before is already within 1/64 of that:
// moving a timer costs more than the syscall it guards, and a deadline a
// little early still bounds the wait.
func (c *idleConn) deadline(last time.Time, set func(time.Time) error) time.Time {
	t := time.Now().Add(c.timeout)
	if !last.IsZero() && t.Sub(last) < c.timeout/64 {
		return last
	}
	set(t)
	return t
}

// Write sends go-milter's packets. go-milter answers an option negotiation
// with the Server's protocol flags whatever the MTA offered, and writes a
// reply only for a command whose handler returns a non-nil response: so the
// answer is cut here to the SMFIP_NR_* flags the MTA offered, and the
// session returns no response to the commands those flags name (see
// session.next). An MTA that offers none gets a reply to every command.
func (c *idleConn) Write(p []byte) (int, error) {
	c.writeDL = c.deadline(c.writeDL, c.Conn.SetWriteDeadline)
	if c.offering && len(p) >= 17 && p[4] == byte(gomilter.CodeOptNeg) {
		c.offering = false
		proto := gomilter.OptProtocol(binary.BigEndian.Uint32(p[13:17]))
		proto &^= NoReplyFlags &^ c.offered
		q := binary.BigEndian.AppendUint32(append(make([]byte, 0, len(p)), p[:13]...), uint32(proto))
		if c.owner != nil {
			c.owner.noReply = proto & NoReplyFlags
		}
		n, err := c.Conn.Write(append(q, p[17:]...))
		return min(n, len(p)), err
	}
	// A modification (header change, quarantine, ...) is always followed
	// by the final reply to end-of-message, which the MTA reads after it:
	// hold it and send both in one write, one syscall instead of several.
	if len(p) >= 5 && isModification(p[4]) && len(c.mods)+len(p) <= maxHeldMods {
		c.mods = append(c.mods, p...)
		return len(p), nil
	}
	if len(c.mods) > 0 {
		all := append(c.mods, p...)
		c.mods = c.mods[:0]
		n, err := c.Conn.Write(all)
		return max(0, n-(len(all)-len(p))), err
	}
	return c.Conn.Write(p)
}

// maxHeldMods bounds the modification packets held for one write.
const maxHeldMods = 64 << 10

// isModification reports the SMFIR_* codes of modification requests:
// add, change and insert header, quarantine, recipients, sender, body.
func isModification(code byte) bool {
	switch code {
	case 'h', 'i', 'm', 'q', '+', '-', '2', 'e', 'b':
		return true
	}
	return false
}

// oneConnListener returns its connection once, then blocks until that
// connection is closed and reports io.EOF, ending go-milter's Serve loop.
type oneConnListener struct {
	conn   net.Conn
	once   sync.Once
	closed chan struct{}
	ch     chan net.Conn
}

func newOneConnListener(c net.Conn) *oneConnListener {
	l := &oneConnListener{closed: make(chan struct{}), ch: make(chan net.Conn, 1)}
	l.conn = &notifyConn{Conn: c, l: l}
	l.ch <- l.conn
	return l
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, io.EOF
	}
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

// notifyConn closes its listener when the session closes the connection.
type notifyConn struct {
	net.Conn
	l *oneConnListener
}

func (c *notifyConn) Close() error {
	err := c.Conn.Close()
	c.l.Close()
	return err
}
