package engine

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/dkimsign"
	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/internal/dkimkey"
	"github.com/authmilter/authmilter/verify/dkim"
	"github.com/authmilter/authmilter/verify/dmarc"
	"github.com/authmilter/authmilter/verify/spf"
)

// Engine evaluates messages: it holds what every message shares (resolver,
// authserv-id, options, policy). The milter session and the offline check
// command drive it through the same Evaluation type, so both judge a message
// exactly alike. An Engine is immutable once in use and safe for concurrent
// use; a configuration reload builds a new one.
type Engine struct {
	Resolver   dnscache.Resolver
	AuthservID string
	Policy     Policy

	SPF   *spf.Options
	DKIM  *dkim.Options
	DMARC *dmarc.Options
	ARC   *arc.Options
	// Sealer, when set, adds an ARC set to every message passed on (for
	// forwarders and mailing lists).
	Sealer *arc.Sealer
	// Signing, when set, DKIM-signs mail that is not judged (issue #21).
	Signing *Signing
	// ReceivedSPF adds a Received-SPF header field (RFC 7208 §9.1).
	ReceivedSPF bool

	// Timeout bounds the wait at end of message for the results still
	// outstanding (lookups started earlier run under the resolver's own
	// timeouts). A result not in by then is a temperror. Default 20s.
	Timeout time.Duration
	// MaxHeaderBytes and MaxHeaders bound the header section kept for
	// verification; a message over either is not verified (DKIM, ARC and
	// DMARC give permerror with the reason) but never lost. Defaults 1 MiB
	// and 1000. MaxHeaderFieldBytes bounds one field (folding included)
	// the same way; default 64 KiB (Postfix cuts fields at 100 KiB,
	// header_size_limit).
	MaxHeaderBytes      int
	MaxHeaders          int
	MaxHeaderFieldBytes int

	// SpeculativeQueries bounds the DNS queries started at MAIL FROM for
	// what the envelope predicts, the MAIL FROM domain's DMARC policy
	// discovery, so that the answers are in the resolver's cache when the
	// header arrives: 0 means DefaultSpeculativeQueries (one tree walk), a
	// negative number starts none. SpeculativeTimeout bounds their time (0:
	// DefaultSpeculativeTimeout); they end with the message too.
	SpeculativeQueries int
	SpeculativeTimeout time.Duration

	// Keys, when set, caches parsed DKIM key records (DKIM signatures and
	// ARC sets); it may be shared by engines (a reload keeps it).
	Keys *dkimkey.Cache

	// Sealers, when set, gathers evidence on ARC sealers (SealerStats);
	// it may be shared by engines (a reload keeps it).
	Sealers *SealerStats
	// Reports, when set, receives the facts of judged messages for DMARC
	// aggregate reports.
	Reports *Reporting

	Logger  *slog.Logger
	Metrics *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Signing is the DKIM signing setup: which unjudged mail is signed, with
// which keys. Judged (inbound) mail is never signed.
type Signing struct {
	Keys    *dkimsign.Table
	Options *dkimsign.Options
	// Authenticated signs mail from SMTP AUTH clients ({auth_authen});
	// Internal mail from Policy.InternalNetworks.
	Authenticated, Internal bool
}

// Envelope holds the SMTP facts of one message.
type Envelope struct {
	ClientIP   netip.Addr // invalid when unknown (e.g. a Unix-socket client)
	ClientName string     // the MTA's name for the client ("unknown" or a verified PTR name)
	HELO       string
	MailFrom   string // without angle brackets; "" for the null reverse-path
	Rcpts      []string
	QueueID    string
	AuthUser   string // {auth_authen}: set for authenticated submissions
	// IPRev is the client's iprev check started at connect
	// (Engine.StartIPRev), shared by the connection's messages; when nil,
	// Begin starts one for the message if the policy asks for it.
	IPRev *ClientCheck
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) timeout() time.Duration {
	if e.Timeout > 0 {
		return e.Timeout
	}
	return 20 * time.Second
}

func (e *Engine) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Begin starts a message at MAIL FROM; env must hold the client, HELO and
// MAIL FROM facts (recipients may be added later). SPF evaluation starts
// now: done before Begin returns when the resolver has every answer in
// memory, in the background otherwise. The message holds resources until
// End or Abort.
func (e *Engine) Begin(parent context.Context, env Envelope) *Evaluation {
	ctx, cancel := context.WithCancel(parent)
	m := &Evaluation{
		e:      e,
		env:    env,
		ctx:    ctx,
		cancel: cancel,
		start:  e.now(),
	}
	m.keyRes = dkimkey.KeyResolver{Resolver: e.Resolver, Keys: e.Keys}
	m.internal = e.Policy.Internal(env.ClientIP, env.AuthUser)
	// With SPF answered from memory the sender is known: its DMARC
	// answers are most likely in memory too, and nothing is speculated.
	if !m.internal {
		m.env.IPRev = m.ipRev()
		if !m.startSPF() {
			m.startSpeculation()
		}
	}
	return m
}
