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

	nextID  atomic.Uint64
	symOnce sync.Once
	symList []byte // SymList as sent in the option negotiation reply

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	closing   bool
	wg        sync.WaitGroup // connections being served
}

// Milter handles the commands of one MTA connection, in the order the MTA
// sends them, on the connection's goroutine. Strings and slices it is
// given are valid only during the call.
type Milter interface {
	// Connect: the SMTP client's host name, the address family (FamilyInet,
	// FamilyInet6, FamilyUnix or FamilyUnknown), port and address as the MTA
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

// Serve accepts connections on ln until Shutdown is called, and serves
// each on its own goroutine.
func (s *Server) Serve(ln net.Listener) error {
	if !s.trackListener(ln, true) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.trackListener(ln, false)
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shuttingDown() {
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
		if !s.trackConn(c, true) {
			nc.Close()
			return ErrServerClosed
		}
		go s.serveConn(c)
	}
}

// trackListener adds ln to the listeners Shutdown closes, or removes it;
// false: the server is shutting down and ln was not added.
func (s *Server) trackListener(ln net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.listeners, ln)
		return true
	}
	if s.closing {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[ln] = struct{}{}
	return true
}

// trackConn adds c to the live connections, or removes it; false: the
// server is shutting down and c was not added.
func (s *Server) trackConn(c *Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		s.wg.Done()
		return true
	}
	if s.closing {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*Conn]struct{})
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
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

// connState is what the protocol keeps for one connection: the read
// buffer, the write buffer, the macros and the modifier.
type connState struct {
	r   packetReader
	w   packetWriter
	mac Macros
	mod Modifier
}

// serveConn speaks the protocol on c until the MTA quits or the
// connection fails, then closes it. A panic in the session is logged and
// ends this connection only.
func (s *Server) serveConn(c *Conn) {
	timeout := s.idleTimeout()
	st := &connState{
		r: packetReader{conn: c.nc, timeout: timeout},
		w: packetWriter{conn: c.nc, timeout: timeout, ack: quickAcker(c.nc)},
	}
	st.mod.w = &st.w
	var m Milter
	defer func() {
		if v := recover(); v != nil {
			s.logger().Error("milter session panicked; connection closed", "conn", c.ID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
		c.nc.Close()
		if m != nil {
			s.closeMilter(c, m)
		}
		c.busy.Store(false)
		s.trackConn(c, false)
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
		w.packet(RespContinue)
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
		case CmdOptNeg:
			if err := s.negotiate(c, data, w); err != nil {
				return err
			}
			mod.actions = c.actions
		case CmdMacro: // the command they are for, name/value pairs
			if len(data) == 0 {
				return protocolError("empty macro packet")
			}
			if !mac.set(data[0], data[1:]) {
				s.logger().Warn("milter macros ignored: more than the limit", "conn", c.ID, "command", string(rune(data[0])), "bytes", len(data)-1, "limit", maxMacroBytes)
			}
		case CmdConnect:
			host, rest := cstring(data)
			if len(rest) == 0 {
				return protocolError("connect without an address family")
			}
			family, rest := rest[0], rest[1:]
			var port uint16
			if family == FamilyInet || family == FamilyInet6 {
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
		case CmdHelo:
			name, _ := cstring(data)
			m.Helo(string(name), mac)
			if err := cont(OptNoHeloReply); err != nil {
				return err
			}
		case CmdMail: // the reverse-path, then ESMTP parameters
			from, _ := cstring(data)
			c.busy.Store(true)
			m.MailFrom(trimAngle(from), mac)
			if err := cont(OptNoMailReply); err != nil {
				return err
			}
		case CmdRcpt:
			rcpt, _ := cstring(data)
			m.RcptTo(trimAngle(rcpt), mac)
			if err := cont(OptNoRcptReply); err != nil {
				return err
			}
		case CmdHeader: // name, value
			name, rest := cstring(data)
			value, _ := cstring(rest)
			m.Header(name, value, mac)
			if err := cont(OptNoHeaderReply); err != nil {
				return err
			}
		case CmdEndOfHeaders:
			m.EndOfHeaders(mac)
			if err := cont(OptNoEOHReply); err != nil {
				return err
			}
		case CmdBody:
			m.BodyChunk(data, mac)
			if err := cont(OptNoBodyReply); err != nil {
				return err
			}
		case CmdEndOfMessage: // possibly with the last piece of body
			if len(data) > 0 {
				m.BodyChunk(data, mac)
			}
			reply := m.EndOfMessage(mac, mod)
			if reply.Code == RespReplyCode {
				w.packet(RespReplyCode, append([]byte(reply.Text), 0))
			} else {
				w.packet(reply.Code)
			}
			mac.clear(macroStage(CmdMail))
			c.busy.Store(false)
			if err := w.flush(); err != nil {
				return err
			}
		case CmdAbort: // the message, not the connection
			m.Abort()
			mac.clear(macroStage(CmdMail))
			c.busy.Store(false)
		case CmdQuitNewConn: // a new SMTP connection follows
			m.Abort()
			mac.clear(0)
			c.busy.Store(false)
		case CmdQuit:
			return nil
		case CmdData:
			if err := cont(OptNoDataReply); err != nil {
				return err
			}
		case CmdUnknown: // an SMTP command the MTA did not know
			if err := cont(OptNoUnknownReply); err != nil {
				return err
			}
		default:
			return protocolError("unknown command %q", code)
		}
	}
}

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
	w.packet(CmdOptNeg, b)
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
	for ln := range s.listeners {
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
