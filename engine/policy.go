package engine

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/domain"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/authres"
	"github.com/authmilter/authmilter/verify/dkim"
	"github.com/authmilter/authmilter/verify/dmarc"
	"github.com/authmilter/authmilter/verify/spf"
)

// Action is what the milter tells the MTA to do with a message.
type Action string

// The actions.
const (
	ActionAccept     Action = "accept"     // pass it on (with our headers)
	ActionReject     Action = "reject"     // 550 5.7.1
	ActionQuarantine Action = "quarantine" // pass it on, held (Postfix: hold queue)
	ActionTempfail   Action = "tempfail"   // 451: the client retries later
)

// QuarantineMode says how a DMARC quarantine disposition is carried out.
type QuarantineMode string

// The quarantine modes.
const (
	// QuarantineHold uses the milter quarantine action: Postfix moves the
	// message to its hold queue, Sendmail quarantines it.
	QuarantineHold QuarantineMode = "hold"
	// QuarantineHeader only writes the verdict into Authentication-Results,
	// for a downstream filter (Sieve, the mailbox) to act on.
	QuarantineHeader QuarantineMode = "header"
)

// TemperrorMode says what a DMARC temperror does.
type TemperrorMode string

// The temperror modes.
const (
	TemperrorTempfail TemperrorMode = "tempfail" // 451 4.7.1: the client retries
	TemperrorAccept   TemperrorMode = "accept"   // accept, the header says temperror
)

// Policy holds the local policy that turns verdicts into actions.
type Policy struct {
	// Enforce applies DMARC reject and quarantine dispositions; when false
	// every message is accepted and only the headers carry the verdict.
	Enforce    bool
	Quarantine QuarantineMode
	Temperror  TemperrorMode
	// AllowNetworks: messages from these clients are never rejected,
	// quarantined or tempfailed for DMARC (the header is still written).
	AllowNetworks []netip.Prefix
	// AllowDomains: messages whose RFC5322.From domain is one of these or a
	// subdomain of one are never rejected, quarantined or tempfailed for
	// DMARC (the header is still written).
	AllowDomains []string
	// InternalNetworks: clients in these networks (and authenticated
	// submissions) are not judged at all.
	InternalNetworks []netip.Prefix
	// SealInternal also ARC-seals mail that is not judged.
	SealInternal bool
	// TrustedSealers are ARC sealing domains whose word is trusted: when
	// the chain validates and one of them recorded dmarc=pass, a local DMARC
	// failure is overridden (RFC 8617 §7.2, RFC 9989 §5.3.7 local policy).
	TrustedSealers []string

	// AllowDKIM and AllowSPF are allowlist entries by authenticated
	// identity: a message with a DKIM signature that verified with one of
	// these d= domains, or an SPF pass for one of these MAIL FROM domains,
	// is never rejected, quarantined or tempfailed for DMARC.
	AllowDKIM []string
	AllowSPF  []string
	// IgnoreMailFrom: envelope senders in these domains (or subdomains)
	// are never rejected, quarantined or tempfailed for DMARC.
	IgnoreMailFrom []string
	// IgnoreRcpt: addresses (postmaster@example.com), local parts at any
	// domain (postmaster@) or domains (example.com and subdomains) whose
	// mail is never rejected for DMARC. A message for some of them and
	// other recipients too is quarantined instead of rejected: held, it is
	// lost for no one and delivered to no one unseen.
	IgnoreRcpt []string
	// ListAction applies to a message with a List-Id field (RFC 2919) that
	// fails DMARC with a reject disposition and that no trusted sealer
	// vouches for. Empty means ListPolicy.
	ListAction ListAction
	// FromChecks: with FromChecksReject, a message with no From field,
	// several, one with several addresses or without a parsable domain is
	// rejected (550 5.7.1, saying which). Empty means off.
	FromChecks FromChecks
	// IPRev: IPRevHeader reports the client's iprev check (RFC 8601 §3)
	// in Authentication-Results; it is never acted on. Empty means off.
	IPRev IPRevMode
}

// DefaultPolicy is what runs without a config: DMARC enforced, quarantine to
// the hold queue, tempfail on temperror, loopback not judged.
func DefaultPolicy() Policy {
	return Policy{
		Enforce:    true,
		Quarantine: QuarantineHold,
		Temperror:  TemperrorTempfail,
		InternalNetworks: []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"),
			netip.MustParsePrefix("::1/128"),
		},
	}
}

// Internal reports whether a message from ip, authenticated as authUser
// (empty when not), is exempt from judgement.
func (p *Policy) Internal(ip netip.Addr, authUser string) bool {
	return authUser != "" || inNetworks(p.InternalNetworks, ip)
}

func inNetworks(nets []netip.Prefix, ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// Decision is the outcome of Decide.
type Decision struct {
	Action Action
	// Reply is the SMTP reply for reject and tempfail ("550 5.7.1 ...").
	Reply string
	// Override says why Action differs from what the DMARC policy asked
	// (a local rule, t=y, pct sampling, a temperror); zero when it does
	// not.
	Override Override
}

// Facts are what Decide weighs: the client, the results, and the
// envelope and header facts the local exemptions look at.
type Facts struct {
	ClientIP netip.Addr
	MailFrom string   // without angle brackets; "" for the null reverse-path
	Rcpts    []string // RCPT TO addresses
	DMARC    *dmarc.Result
	ARC      *arc.Result
	SPF      *spf.Result // the MAIL FROM identity
	DKIM     []dkim.Signature
	// From holds the values of the From fields; FromKnown reports that
	// the header section was kept (not over a limit), so From is complete.
	From      []string
	FromKnown bool
	ListID    bool // the message has a List-Id field (RFC 2919)
}

// Decide is Decide for the client address and the DMARC and ARC results
// alone.
func (p *Policy) Decide(ip netip.Addr, d *dmarc.Result, a *arc.Result) Decision {
	return p.DecideFacts(Facts{ClientIP: ip, DMARC: d, ARC: a})
}

// DecideFacts is the one place where verdicts become actions, for a
// message that is judged. Whenever the action is not what the DMARC
// policy asked for, the Decision says why in its Override, and every
// output (Authentication-Results, the log line, `authmilter check`, DMARC
// reports) shows that same Override.
func (p *Policy) DecideFacts(f Facts) Decision {
	if p.FromChecks == FromChecksReject && f.FromKnown {
		if problem := fromProblem(f.From); problem != "" {
			return Decision{
				Action:   ActionReject,
				Reply:    "550 5.7.1 Message rejected: " + replySafe(problem) + "; RFC 5322 requires exactly one From address with a domain",
				Override: Override{OverrideLocalPolicy, problem + ", policy.from_checks: reject"},
			}
		}
	}
	d := f.DMARC
	if d == nil {
		d = &dmarc.Result{Status: verify.StatusNone}
		f.DMARC = d
	}
	accept := Decision{Action: ActionAccept}
	switch d.Status {
	case verify.StatusFail:
		if d.Disposition == dmarc.PolicyNone || d.Disposition == "" {
			// t=y or pct lowered quarantine to none (RFC 9989 §4.7,
			// RFC 7489 §6.6.4).
			accept.Override = reduced(d)
			return accept
		}
	case verify.StatusTemperror:
		if p.Temperror != TemperrorTempfail {
			accept.Override = Override{OverrideLocalPolicy, "DMARC temperror accepted, policy.temperror: accept"}
			return accept
		}
	default:
		return accept
	}
	// From here the DMARC result would cost the message something: look
	// for a local policy that says otherwise.
	if o := p.exempt(&f); !o.IsZero() {
		return Decision{Action: ActionAccept, Override: o}
	}
	if d.Status == verify.StatusFail {
		// RFC 8617 §7.2, RFC 9989 §5.3.7: local policy may weigh the
		// word of a trusted intermediary.
		if sealer := p.trustedPass(f.ARC); sealer != "" {
			return Decision{Action: ActionAccept, Override: Override{OverrideTrustedForwarder, "ARC sealer " + sealer + " reported dmarc=pass"}}
		}
	}
	if d.Status == verify.StatusFail && f.ListID && p.ListAction == ListAccept {
		return Decision{Action: ActionAccept, Override: Override{OverrideMailingList, "List-Id field, dmarc.list_action: accept"}}
	}
	if !p.Enforce {
		return Decision{Action: ActionAccept, Override: Override{OverrideLocalPolicy, "not enforced, policy.enforce: false"}}
	}
	// A trusted sealer's chain that could not be validated for a temporary
	// DNS failure might have lifted the failure: treat it like a DMARC
	// temperror rather than reject on half the facts.
	if d.Status == verify.StatusFail && p.Temperror == TemperrorTempfail {
		if sealer := p.trustedPending(f.ARC); sealer != "" {
			return Decision{
				Action:   ActionTempfail,
				Reply:    fmt.Sprintf("451 4.7.1 Temporary failure validating the ARC chain of %s; try again later", replySafe(sealer)),
				Override: Override{OverrideOther, "ARC chain of trusted sealer " + sealer + " not validated for a temporary DNS failure: deferred"},
			}
		}
	}
	if d.Status == verify.StatusTemperror {
		return Decision{
			Action:   ActionTempfail,
			Reply:    fmt.Sprintf("451 4.7.1 Temporary failure evaluating the DMARC policy of %s; try again later", replySafe(d.AuthorDomain)),
			Override: Override{OverrideOther, "DMARC temperror deferred, policy.temperror: tempfail"},
		}
	}
	if action, o := p.lower(&f); !o.IsZero() {
		return Decision{Action: action, Override: o}
	}
	switch d.Disposition {
	case dmarc.PolicyReject:
		return Decision{
			Action: ActionReject,
			Reply:  fmt.Sprintf("550 5.7.1 Message rejected: DMARC policy of %s is reject and the message failed DMARC (%s)", replySafe(d.PolicyDomain), replySafe(publicDMARCReason(*d))),
		}
	case dmarc.PolicyQuarantine:
		if p.Quarantine == QuarantineHold {
			return Decision{Action: ActionQuarantine, Override: reduced(d)}
		}
		return Decision{Action: ActionAccept, Override: Override{OverrideLocalPolicy, "quarantine left to the recipient's filters, policy.quarantine: header"}}
	}
	return accept
}

// reduced is the override of a disposition that t=y or pct sampling made
// less strict than the policy.
func reduced(d *dmarc.Result) Override {
	switch d.Reduced {
	case dmarc.ReducedTesting:
		return Override{OverrideTestMode, "t=y: " + string(d.Policy) + " lowered to " + dispositionWord(d)}
	case dmarc.ReducedSampling:
		return Override{OverrideSampledOut, "pct: " + string(d.Policy) + " lowered to " + dispositionWord(d)}
	}
	return Override{}
}

// trustedPass returns the first trusted sealer of a validated chain whose
// ARC-Authentication-Results record dmarc=pass, or "".
func (p *Policy) trustedPass(a *arc.Result) string {
	if a == nil || a.Status != verify.StatusPass || len(p.TrustedSealers) == 0 {
		return ""
	}
	// Newest first: the closest trusted hop is the most relevant.
	for i := len(a.Sets) - 1; i >= 0; i-- {
		s := a.Sets[i]
		trusted := false
		for _, t := range p.TrustedSealers {
			if sameDomain(s.Domain, t) {
				trusted = true
				break
			}
		}
		if !trusted {
			continue
		}
		h, err := authres.Parse(s.AAR)
		if err != nil {
			continue
		}
		for _, r := range h.Results {
			if strings.EqualFold(r.Method, "dmarc") && r.Value == verify.StatusPass {
				return s.Domain
			}
		}
	}
	return ""
}

// trustedPending returns a trusted sealer of a chain whose validation
// stopped on a temporary failure, or "": one whose ARC-Authentication-Results
// record dmarc=pass, as trustedPass needs once the chain validates. A
// trusted sealer that did not see dmarc=pass could not lift the failure on
// a retry, so deferring for it would only delay the reject.
func (p *Policy) trustedPending(a *arc.Result) string {
	if a == nil || a.Status != verify.StatusTemperror {
		return ""
	}
	for i := len(a.Sets) - 1; i >= 0; i-- {
		for _, t := range p.TrustedSealers {
			if sameDomain(a.Sets[i].Domain, t) && aarDMARCPass(a.Sets[i].AAR) {
				return a.Sets[i].Domain
			}
		}
	}
	return ""
}

// sameOrSub reports whether dom is parent or a subdomain of it; sameDomain
// whether a and b are the same domain. U-labels and A-labels compare as
// the same domain (RFC 8616), case and a trailing dot do not matter.
func sameOrSub(dom, parent string) bool {
	d, err1 := domain.Parse(dom)
	p, err2 := domain.Parse(parent)
	return err1 == nil && err2 == nil && d.IsSameOrUnder(p)
}

func sameDomain(a, b string) bool {
	x, err1 := domain.Parse(a)
	y, err2 := domain.Parse(b)
	return err1 == nil && err2 == nil && x.Equal(y)
}

// replySafe keeps an SMTP reply on one line of printable ASCII.
func replySafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	if len(b) > 200 {
		b = append(b[:197], "..."...)
	}
	return string(b)
}
