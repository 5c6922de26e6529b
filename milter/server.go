package milter

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server accepts milter connections from an MTA and speaks the milter
// protocol on each, one goroutine per connection: it reads the MTA's
// commands, hands them to the connection's Milter, and answers them. Every
// command before end of message is answered "continue" by the server
// itself, or not at all when the MTA was granted the SMFIP_NR_* flag for
// it; the Milter gives only the final reply to each message.
type Server struct {
	// NewSession returns the handler of one MTA connection, which lives
	// as long as the connection (all its messages).
	NewSession func(c *Conn) Milter
	// Logger receives connection-level events.
	Logger *slog.Logger
	// IdleTimeout bounds the wait for the MTA's next command and the time
	// to receive it whole, and the time to send a reply (default 5 min,
	// more than Postfix's milter_content_timeout).
	IdleTimeout time.Duration
	// Actions and Protocol are what the server asks for at negotiation;
	// it gets those of them the MTA offers.
	Actions  OptAction
	Protocol OptProtocol
	// SymList requests macros per stage (when the MTA grants
	// SMFIF_SETSYMLIST).
	SymList map[Stage][]string

	nextID   atomic.Uint64
	ended    atomic.Uint64 // messages answered at end of message
	bufs     bufPool       // read buffers of finished packets and connections
	symOnce  sync.Once
	symList  []byte // SymList as sent in the option negotiation reply
	mu       sync.Mutex
	conns    map[*Conn]struct{}
	closing  bool
	listener []net.Listener
	wg       sync.WaitGroup // connections being served
	// handoff passes an accepted connection to an idle worker; quit
	// (closed by Shutdown) ends the idle ones.
	handoff  chan *Conn
	quit     chan struct{}
	quitOnce sync.Once
	workers  sync.WaitGroup // workers, and the closer
	closer   closer
}

// Milter handles the commands of one MTA connection, in the order the MTA
// sends them, on the connection's goroutine. Strings and slices it is
// given are valid only during the call.
type Milter interface {
	// Connect: the SMTP client's host name, the address family ('4', '6',
	// 'L' for a local socket, 'U' unknown), port and address as the MTA
	// gives them.
	Connect(host string, family byte, port uint16, addr string, m *Macros)
	Helo(name string, m *Macros)
	// MailFrom starts a message; from is the reverse-path without its
	// angle brackets ("" for the null sender).
	MailFrom(from string, m *Macros)
	RcptTo(rcpt string, m *Macros)
	// Header: one field as the MTA passes it (with the leading space of
	// the value when Conn.Protocol has OptHeaderLeadingSpace; folded
	// lines joined with LF).
	Header(name, value []byte, m *Macros)
	EndOfHeaders(m *Macros)
	BodyChunk(chunk []byte, m *Macros)
	// EndOfMessage returns the final reply, after asking for any changes
	// through mod.
	EndOfMessage(m *Macros, mod *Modifier) Reply
	// Abort: the MTA abandoned the message in progress.
	Abort()
	// Close: the connection has ended; release what a message in
	// progress holds.
	Close()
}

// Conn is one MTA connection.
type Conn struct {
	ID     uint64
	Remote string // the MTA's address
	busy   atomic.Bool
	nc     net.Conn
	// proto and actions are what negotiation granted; written and read
	// by the connection's goroutine only.
	proto   OptProtocol
	actions OptAction
}

// Protocol returns the protocol flags granted at negotiation.
func (c *Conn) Protocol() OptProtocol { return c.proto }

// NoReplyFlags are the SMFIP_NR_* protocol flags the server asks for: for
// each, the MTA does not wait for a reply to that command and the server
// sends none.
const NoReplyFlags = OptNoConnReply | OptNoHeloReply | OptNoMailReply |
	OptNoRcptReply | OptNoEOHReply | OptNoBodyReply | OptNoHeaderReply

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
		s.handoff = make(chan *Conn)
		s.quit = make(chan struct{})
	}
	ln = newRawListener(ln)
	s.listener = append(s.listener, ln)
	s.closer.start(s.quit, &s.workers)
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
		c := &Conn{ID: s.nextID.Add(1), Remote: nc.RemoteAddr().String(), nc: nc}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		// An idle worker takes it, or a new one.
		select {
		case s.handoff <- c:
		default:
			s.workers.Add(1)
			go s.worker(c)
		}
	}
}

// workerIdle is how long a connection's goroutine waits for another
// connection once its own has ended. Reusing it spares the new goroutine
// and, above all, growing its stack again to the depth of the signature
// checks, for every connection (Postfix opens one per SMTP session).
const workerIdle = time.Second

// worker serves c, then the connections the accept loop hands it while it
// is idle, until none comes for workerIdle or the server shuts down.
func (s *Server) worker(c *Conn) {
	defer s.workers.Done()
	var idle *time.Timer
	st := &connState{}
	defer st.r.release()
	for {
		s.serveConn(c, st)
		if idle == nil {
			idle = time.NewTimer(workerIdle)
		} else {
			idle.Reset(workerIdle)
		}
		select {
		case c = <-s.handoff:
		case <-idle.C:
			return
		case <-s.quit:
			return
		}
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

// connState is what a worker keeps from one connection to the next: the
// read buffer (up to keepBufSize), the write buffer, the macro storage and
// the modifier's scratch space, so that a connection allocates none of
// them again.
type connState struct {
	raw rawConn
	r   packetReader
	w   packetWriter
	mac Macros
	mod Modifier
}

// reset readies st for the connection nc.
func (st *connState) reset(nc net.Conn, timeout time.Duration, pool *bufPool) {
	st.raw.reset(nc)
	st.r.conn, st.r.timeout, st.r.pool, st.r.readDL = &st.raw, timeout, pool, time.Time{}
	st.r.buf, st.r.start, st.r.end = st.r.buf[:0], 0, 0
	st.w.conn, st.w.timeout, st.w.out, st.w.writeDL = &st.raw, timeout, st.w.out[:0], time.Time{}
	st.mac.clear(0)
	st.mac.trim()
	st.mac.cur = 0
	st.mod.w, st.mod.actions = &st.w, 0
}

func (s *Server) serveConn(c *Conn, st *connState) {
	defer s.wg.Done()
	st.reset(c.nc, s.idleTimeout(), &s.bufs)
	r, w := &st.r, &st.w
	var m Milter
	defer func() {
		if v := recover(); v != nil {
			s.logger().Error("milter session panicked; connection closed", "conn", c.ID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
		s.closer.close(c.nc)
		// A buffer grown for a big packet is not kept.
		if cap(r.buf) > keepBufSize {
			r.release()
		}
		r.conn, w.conn = nil, nil
		st.raw.reset(nil)
		if m != nil {
			s.closeMilter(c, m)
		}
		c.busy.Store(false)
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	m = s.NewSession(c)
	if err := s.converse(c, m, st); err != nil {
		lvl := slog.LevelWarn
		if errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) && !c.busy.Load() {
			lvl = slog.LevelDebug
		}
		s.logger().Log(context.Background(), lvl, "milter connection ended", "conn", c.ID, "remote", c.Remote, "err", err)
	}
}

// closeMilter tells m that its connection ended, containing a panic there
// as serveConn does for the other calls.
func (s *Server) closeMilter(c *Conn, m Milter) {
	defer func() {
		if v := recover(); v != nil {
			s.logger().Error("milter session panicked at close", "conn", c.ID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	m.Close()
}

// converse runs the protocol until the MTA quits (nil) or the connection
// fails (the error).
func (s *Server) converse(c *Conn, m Milter, st *connState) error {
	r, w, mac, mod := &st.r, &st.w, &st.mac, &st.mod
	// cont answers a command with "continue" unless the MTA was granted
	// nr and does not wait for a reply.
	cont := func(nr OptProtocol) error {
		if c.proto&nr != 0 {
			return nil
		}
		w.packet('c')
		return w.flush()
	}
	for {
		code, data, err := r.next()
		if err != nil {
			if err == io.EOF {
				return nil // the MTA closed between commands
			}
			return err
		}
		mac.cur = macroStage(code)
		switch code {
		case 'O': // SMFIC_OPTNEG
			if err := s.negotiate(c, data, w); err != nil {
				return err
			}
			mod.actions = c.actions
		case 'D': // SMFIC_MACRO: the command they are for, name/value pairs
			if len(data) == 0 {
				return protocolError("empty macro packet")
			}
			if !mac.set(data[0], data[1:]) {
				s.logger().Warn("milter macros ignored: more than the limit", "conn", c.ID, "command", string(rune(data[0])), "bytes", len(data)-1, "limit", maxMacroBytes)
			}
		case 'C': // SMFIC_CONNECT
			host, rest := cstring(data)
			if len(rest) == 0 {
				return protocolError("connect without an address family")
			}
			family, rest := rest[0], rest[1:]
			var port uint16
			if family == '4' || family == '6' {
				if len(rest) < 2 {
					return protocolError("connect without a port")
				}
				port, rest = binary.BigEndian.Uint16(rest), rest[2:]
			}
			addr, _ := cstring(rest)
			m.Connect(string(host), family, port, string(addr), mac)
			if err := cont(OptNoConnReply); err != nil {
				return err
			}
		case 'H': // SMFIC_HELO
			name, _ := cstring(data)
			m.Helo(string(name), mac)
			if err := cont(OptNoHeloReply); err != nil {
				return err
			}
		case 'M': // SMFIC_MAIL: the reverse-path, then ESMTP parameters
			from, _ := cstring(data)
			c.busy.Store(true)
			m.MailFrom(trimAngle(from), mac)
			if err := cont(OptNoMailReply); err != nil {
				return err
			}
		case 'R': // SMFIC_RCPT
			rcpt, _ := cstring(data)
			m.RcptTo(trimAngle(rcpt), mac)
			if err := cont(OptNoRcptReply); err != nil {
				return err
			}
		case 'L': // SMFIC_HEADER: name, value
			name, rest := cstring(data)
			value, _ := cstring(rest)
			m.Header(name, value, mac)
			if err := cont(OptNoHeaderReply); err != nil {
				return err
			}
		case 'N': // SMFIC_EOH
			m.EndOfHeaders(mac)
			if err := cont(OptNoEOHReply); err != nil {
				return err
			}
		case 'B': // SMFIC_BODY
			m.BodyChunk(data, mac)
			if err := cont(OptNoBodyReply); err != nil {
				return err
			}
		case 'E': // SMFIC_BODYEOB, possibly with the last piece of body
			if len(data) > 0 {
				m.BodyChunk(data, mac)
			}
			reply := m.EndOfMessage(mac, mod)
			s.ended.Add(1)
			if reply.Code == 'y' {
				w.packet('y', append([]byte(reply.Text), 0))
			} else {
				w.packet(reply.Code)
			}
			mac.clear(macroStage('M'))
			c.busy.Store(false)
			if err := w.flush(); err != nil {
				return err
			}
		case 'A': // SMFIC_ABORT: the message, not the connection
			m.Abort()
			mac.clear(macroStage('M'))
			c.busy.Store(false)
		case 'K': // SMFIC_QUIT_NC: a new SMTP connection follows
			m.Abort()
			mac.clear(0)
			c.busy.Store(false)
		case 'Q': // SMFIC_QUIT
			return nil
		case 'T': // SMFIC_DATA
			if err := cont(OptNoDataReply); err != nil {
				return err
			}
		case 'U': // SMFIC_UNKNOWN: an SMTP command the MTA did not know
			if err := cont(OptNoUnknownReply); err != nil {
				return err
			}
		default:
			return protocolError("unknown command %q", code)
		}
	}
}

// Messages returns how many messages the server has answered at end of
// message since it started: the work done, for a caller sizing the
// scheduler to it (package internal/procs).
func (s *Server) Messages() uint64 { return s.ended.Load() }

// negotiate answers SMFIC_OPTNEG: the protocol version, and of the actions
// and protocol flags the server wants those the MTA offers, then the macro
// lists.
func (s *Server) negotiate(c *Conn, data []byte, w *packetWriter) error {
	if len(data) < 12 {
		return protocolError("option negotiation of %d bytes", len(data))
	}
	version := binary.BigEndian.Uint32(data)
	if version < minVersion {
		return protocolError("MTA speaks milter protocol version %d, need %d or later", version, minVersion)
	}
	version = min(version, protocolVersion)
	offered := OptAction(binary.BigEndian.Uint32(data[4:]))
	c.actions = s.Actions & offered
	c.proto = s.Protocol & OptProtocol(binary.BigEndian.Uint32(data[8:]))
	if missing := s.Actions &^ offered; missing != 0 {
		s.logger().Warn("the MTA does not allow some milter actions; those changes will not be made", "conn", c.ID, "actions_missing", fmt.Sprintf("%#x", uint32(missing)))
	}
	b := binary.BigEndian.AppendUint32(nil, version)
	b = binary.BigEndian.AppendUint32(b, uint32(c.actions))
	b = binary.BigEndian.AppendUint32(b, uint32(c.proto))
	if c.actions&OptSetSymList != 0 && version >= 6 {
		s.symOnce.Do(s.encodeSymList)
		b = append(b, s.symList...)
	}
	w.packet('O', b)
	return w.flush()
}

// encodeSymList encodes SymList for the option negotiation reply, once:
// each stage, in order, with its macro names.
func (s *Server) encodeSymList() {
	stages := make([]Stage, 0, len(s.SymList))
	for st := range s.SymList {
		stages = append(stages, st)
	}
	slices.Sort(stages)
	for _, st := range stages {
		s.symList = binary.BigEndian.AppendUint32(s.symList, uint32(st))
		s.symList = append(s.symList, strings.Join(s.SymList[st], " ")...)
		s.symList = append(s.symList, 0)
	}
}

// trimAngle returns an address without the angle brackets around it
// (every one: a client that adds its own pair to "<a@b>" is tolerated).
func trimAngle(b []byte) string {
	return string(bytes.Trim(b, "<>"))
}

// Shutdown stops accepting, closes connections that are between messages,
// waits for messages in flight, and after ctx is done closes the rest.
// Postfix applies milter_default_action to what it could not finish.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	if s.quit != nil {
		s.quitOnce.Do(func() { close(s.quit) })
	}
	for _, ln := range s.listener {
		ln.Close()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); s.workers.Wait(); close(done) }()
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
