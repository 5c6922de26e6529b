package milter

import (
	"context"
	"net"
	"net/netip"
	"net/textproto"
	"strings"

	gomilter "github.com/emersion/go-milter"

	"github.com/authmilter/authmilter/internal/message"
)

// Negotiated with the MTA. Header changes, inserts and quarantine are all
// the actions used; SMFIP_HDR_LEADSPC keeps header values byte-exact for
// c=simple canonicalisation. Every command before end-of-message is answered
// "continue", so the SMFIP_NR_* flags ask the MTA not to wait for those
// replies, sparing a round trip per header field: the server grants only
// the ones the MTA offered (idleConn.Write) and the session then returns no
// response, which go-milter does not send.
const (
	Actions  = gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine | gomilter.OptSetSymList
	Protocol = gomilter.OptHeaderLeadingSpace | gomilter.OptNoUnknown | gomilter.OptNoData | NoReplyFlags
)

// SymList asks for the macros the sessions read. A list replaces the MTA's
// default for its stage, so each names everything needed there.
var SymList = map[gomilter.Stage][]string{
	gomilter.StageConnect:  {"j", "{client_addr}", "{client_name}", "{daemon_name}"},
	gomilter.StageMailFrom: {"i", "{auth_authen}", "{mail_addr}"},
	gomilter.StageEOH:      {"i"},
	gomilter.StageEOM:      {"i"},
}

// Handler creates the milter sessions of a Server from the current Engine.
type Handler struct {
	// Engine returns the engine for a new message; a config reload swaps
	// what it returns, and a message keeps the one it started with.
	Engine func() *Engine
	// Context is the parent of every message's context (nil: Background).
	Context context.Context
}

// NewSession returns the go-milter handler for the next transaction on c.
// It is called again after every final response, so everything that must
// outlive a message lives in c.
func (h *Handler) NewSession(c *Conn) gomilter.Milter {
	return &session{h: h, c: c}
}

// session implements gomilter.Milter for the messages of one connection.
type session struct {
	h   *Handler
	c   *Conn
	msg *Message
}

func (s *session) ctx() context.Context {
	if s.h.Context != nil {
		return s.h.Context
	}
	return context.Background()
}

// parseClientIP reads the client address from what the MTA sent: the
// connect command's address, or the {client_addr} macro, which Sendmail
// writes as "IPv6:2001:db8::1".
func parseClientIP(addr net.IP, macro string) netip.Addr {
	if a, ok := netip.AddrFromSlice(addr); ok && addr != nil {
		return a.Unmap()
	}
	macro = strings.TrimPrefix(strings.TrimPrefix(strings.Trim(macro, "[]"), "IPv6:"), "ipv6:")
	if a, err := netip.ParseAddr(macro); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

func (s *session) Connect(host, family string, port uint16, addr net.IP, m *gomilter.Modifier) (gomilter.Response, error) {
	ip := parseClientIP(addr, m.Macros["{client_addr}"])
	s.c.setFacts(func(f *clientFacts) {
		f.ip, f.name, f.helo = ip, host, ""
	})
	return s.next(gomilter.OptNoConnReply)
}

func (s *session) Helo(name string, m *gomilter.Modifier) (gomilter.Response, error) {
	s.c.setFacts(func(f *clientFacts) { f.helo = name })
	return s.next(gomilter.OptNoHeloReply)
}

func (s *session) MailFrom(from string, m *gomilter.Modifier) (gomilter.Response, error) {
	s.release()
	eng := s.h.Engine()
	f := s.c.facts()
	env := Envelope{
		ClientIP:   f.ip,
		ClientName: f.name,
		HELO:       f.helo,
		MailFrom:   strings.TrimSpace(from),
		QueueID:    m.Macros["i"],
		AuthUser:   m.Macros["{auth_authen}"],
	}
	s.msg = eng.Begin(s.ctx(), env)
	s.c.SetBusy(true)
	msg := s.msg
	s.c.setCleanup(msg.Abort)
	return s.next(gomilter.OptNoMailReply)
}

func (s *session) RcptTo(rcpt string, m *gomilter.Modifier) (gomilter.Response, error) {
	if s.msg != nil {
		s.msg.AddRcpt(rcpt)
	}
	return s.next(gomilter.OptNoRcptReply)
}

func (s *session) Header(name, value string, m *gomilter.Modifier) (gomilter.Response, error) {
	if s.msg != nil {
		s.msg.Header(message.FromMilter(name, value, true))
	}
	return s.next(gomilter.OptNoHeaderReply)
}

func (s *session) Headers(_ textproto.MIMEHeader, m *gomilter.Modifier) (gomilter.Response, error) {
	if s.msg != nil {
		s.msg.SetQueueID(m.Macros["i"])
		s.msg.EndOfHeaders()
	}
	return s.next(gomilter.OptNoEOHReply)
}

func (s *session) BodyChunk(chunk []byte, m *gomilter.Modifier) (gomilter.Response, error) {
	if s.msg != nil {
		s.msg.Body(chunk)
	}
	return s.next(gomilter.OptNoBodyReply)
}

func (s *session) Body(m *gomilter.Modifier) (gomilter.Response, error) {
	msg := s.msg
	if msg == nil {
		return gomilter.RespAccept, nil
	}
	msg.SetQueueID(m.Macros["i"])
	v := msg.End()
	s.msg = nil
	s.c.setCleanup(nil)
	s.c.SetBusy(false)
	return apply(v, m)
}

// next is the answer to a command that lets the message go on: "continue",
// or no response at all when the MTA was granted nr (an SMFIP_NR_* flag)
// and does not wait for one.
func (s *session) next(nr gomilter.OptProtocol) (gomilter.Response, error) {
	if s.c.NoReply()&nr != 0 {
		return nil, nil
	}
	return gomilter.RespContinue, nil
}

// apply carries out a verdict through the milter protocol.
func apply(v *Verdict, m *gomilter.Modifier) (gomilter.Response, error) {
	switch v.Action {
	case ActionReject, ActionTempfail:
		return gomilter.NewResponseStr('y', v.Reply), nil
	}
	// Removals first, highest index first, then inserts at the top in
	// reverse so that the first of v.Insert ends up first.
	for _, i := range v.RemoveAR {
		if err := m.ChangeHeader(i, "Authentication-Results", ""); err != nil {
			return nil, err
		}
	}
	for i := len(v.Insert) - 1; i >= 0; i-- {
		f := v.Insert[i]
		if err := m.InsertHeader(0, f.Name, f.Value()); err != nil {
			return nil, err
		}
	}
	if v.Action == ActionQuarantine {
		if err := m.Quarantine(v.QuarantineReason); err != nil {
			return nil, err
		}
	}
	return gomilter.RespAccept, nil
}

func (s *session) Abort(m *gomilter.Modifier) error {
	s.release()
	return nil
}

// release aborts the message in progress, if any.
func (s *session) release() {
	if s.msg != nil {
		s.msg.Abort()
		s.msg = nil
	}
	s.c.setCleanup(nil)
	s.c.SetBusy(false)
}
