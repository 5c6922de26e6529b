package engine

import (
	"context"
	"net/netip"
	"strings"

	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/milter"
)

// Negotiated with the MTA. Header changes, inserts and quarantine are all
// the actions used; SMFIP_HDR_LEADSPC keeps header values byte-exact for
// c=simple canonicalisation. Every command before end-of-message is answered
// "continue", so the SMFIP_NR_* flags ask the MTA not to wait for those
// replies, sparing a round trip per header field; the server gets those
// the MTA offers.
const (
	Actions  = milter.OptAddHeader | milter.OptChangeHeader | milter.OptQuarantine | milter.OptSetSymList
	Protocol = milter.OptHeaderLeadingSpace | milter.OptNoUnknown | milter.OptNoData | milter.NoReplyFlags
)

// SymList asks for the macros the sessions read. A list replaces the MTA's
// default for its stage, so each names everything needed there.
var SymList = map[milter.Stage][]string{
	milter.StageConnect:  {"j", "{client_addr}", "{client_name}", "{daemon_name}"},
	milter.StageMailFrom: {"i", "{auth_authen}", "{mail_addr}"},
	milter.StageEOH:      {"i"},
	milter.StageEOM:      {"i"},
}

// Handler adapts the milter protocol to the engine: it creates the
// sessions of a milter.Server, each of which turns the MTA's commands into
// Evaluation calls and the Verdict into the final reply and header changes.
type Handler struct {
	// Engine returns the engine for a new message; a config reload swaps
	// what it returns, and a message keeps the one it started with.
	Engine func() *Engine
	// Context is the parent of every message's context (nil: Background).
	Context context.Context
}

// NewSession returns the handler of the MTA connection c.
func (h *Handler) NewSession(c *milter.Conn) milter.Milter {
	return &session{h: h, c: c}
}

// clientFacts are what an SMTP connection tells about its client.
type clientFacts struct {
	ip    netip.Addr
	name  string
	helo  string
	iprev *ClientCheck // started at connect; nil when iprev is off
}

// session is the Milter of one connection: the SMTP client's facts, which
// hold for all its messages whatever their verdicts, and the message in
// progress.
type session struct {
	h      *Handler
	c      *milter.Conn
	client clientFacts
	msg    *Evaluation
}

func (s *session) ctx() context.Context {
	if s.h.Context != nil {
		return s.h.Context
	}
	return context.Background()
}

// parseClientIP reads the client address from what the MTA sent: the
// connect command's address, or the {client_addr} macro. Sendmail writes
// IPv6 addresses as "IPv6:2001:db8::1".
func parseClientIP(addr, macro string) netip.Addr {
	for _, s := range []string{addr, macro} {
		s = strings.TrimPrefix(strings.TrimPrefix(strings.Trim(s, "[]"), "IPv6:"), "ipv6:")
		if a, err := netip.ParseAddr(s); err == nil {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

func (s *session) Connect(host string, family byte, port uint16, addr string, m *milter.Macros) {
	s.release()
	if family != milter.FamilyInet && family != milter.FamilyInet6 {
		addr = ""
	}
	s.client.iprev.Stop()
	ip := parseClientIP(addr, m.Get("{client_addr}"))
	s.client = clientFacts{ip: ip, name: host, iprev: s.h.Engine().StartIPRev(s.ctx(), ip)}
}

func (s *session) Helo(name string, m *milter.Macros) { s.client.helo = name }

func (s *session) MailFrom(from string, m *milter.Macros) {
	s.release()
	eng := s.h.Engine()
	env := Envelope{
		ClientIP:   s.client.ip,
		ClientName: s.client.name,
		HELO:       s.client.helo,
		MailFrom:   strings.TrimSpace(from),
		QueueID:    m.Get("i"),
		AuthUser:   m.Get("{auth_authen}"),
		IPRev:      s.client.iprev,
	}
	s.msg = eng.Begin(s.ctx(), env)
}

func (s *session) RcptTo(rcpt string, m *milter.Macros) {
	if s.msg != nil {
		s.msg.AddRcpt(rcpt)
	}
}

func (s *session) Header(name, value []byte, m *milter.Macros) {
	if s.msg != nil {
		s.msg.Header(message.FromMilterBytes(name, value, s.c.Protocol()&milter.OptHeaderLeadingSpace != 0))
	}
}

func (s *session) EndOfHeaders(m *milter.Macros) {
	if s.msg != nil {
		s.msg.SetQueueID(m.Get("i"))
		s.msg.EndOfHeaders()
	}
}

func (s *session) BodyChunk(chunk []byte, m *milter.Macros) {
	if s.msg != nil {
		s.msg.Body(chunk)
	}
}

func (s *session) EndOfMessage(m *milter.Macros, mod *milter.Modifier) milter.Reply {
	msg := s.msg
	if msg == nil {
		return milter.ReplyAccept
	}
	msg.SetQueueID(m.Get("i"))
	v := msg.End()
	s.msg = nil
	return apply(v, mod)
}

// apply carries out a verdict through the milter protocol.
func apply(v *Verdict, m *milter.Modifier) milter.Reply {
	switch v.Action {
	case ActionReject, ActionTempfail:
		return milter.ReplyCode(v.Reply)
	}
	// Removals first, highest index first, then inserts at the top in
	// reverse so that the first of v.Insert ends up first.
	for _, i := range v.RemoveAR {
		m.ChangeHeader(i, "Authentication-Results", "")
	}
	for i := len(v.Insert) - 1; i >= 0; i-- {
		f := v.Insert[i]
		m.InsertHeader(0, f.Name, f.Value())
	}
	if v.Action == ActionQuarantine {
		m.Quarantine(v.QuarantineReason)
	}
	return milter.ReplyAccept
}

func (s *session) Abort() { s.release() }

func (s *session) Close() {
	s.release()
	s.client.iprev.Stop()
}

// release aborts the message in progress, if any.
func (s *session) release() {
	if s.msg != nil {
		s.msg.Abort()
		s.msg = nil
	}
}
