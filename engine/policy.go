package engine

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/domain"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/authres"
	"github.com/authmilter/authmilter/verify/dmarc"
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
	// Override names a local policy that overrode the DMARC disposition
	// (RFC 9989 / RFC 7489 §7.2.1.2 PolicyOverride vocabulary:
	// trusted_forwarder, local_policy) with the facts, e.g.
	// "trusted_forwarder: ARC sealer lists.example.org reported dmarc=pass";
	// empty when none applied.
	Override string
}

// Decide is the one place where verdicts become actions. It sees the client
// address, the DMARC result and the ARC result of a message that is judged.
func (p *Policy) Decide(ip netip.Addr, d *dmarc.Result, a *arc.Result) Decision {
	accept := Decision{Action: ActionAccept}
	switch d.Status {
	case verify.StatusFail:
		if d.Disposition == dmarc.PolicyNone || d.Disposition == "" {
			return accept
		}
	case verify.StatusTemperror:
		if p.Temperror != TemperrorTempfail {
			return accept
		}
	default:
		return accept
	}
	// From here the DMARC result would cost the message something: look
	// for a local policy that says otherwise.
	if inNetworks(p.AllowNetworks, ip) {
		return Decision{Action: ActionAccept, Override: "local_policy: client " + ip.Unmap().String() + " is in allow_networks"}
	}
	if dom := d.AuthorDomain; dom != "" {
		for _, allowed := range p.AllowDomains {
			if sameOrSub(dom, allowed) {
				return Decision{Action: ActionAccept, Override: "local_policy: " + dom + " is in allow_domains"}
			}
		}
	}
	if d.Status == verify.StatusFail {
		if sealer := p.trustedPass(a); sealer != "" {
			return Decision{Action: ActionAccept, Override: "trusted_forwarder: ARC sealer " + sealer + " reported dmarc=pass"}
		}
	}
	if !p.Enforce {
		return accept
	}
	// A trusted sealer's chain that could not be validated for a temporary
	// DNS failure might have lifted the failure: treat it like a DMARC
	// temperror rather than reject on half the facts.
	if d.Status == verify.StatusFail && p.Temperror == TemperrorTempfail {
		if sealer := p.trustedPending(a); sealer != "" {
			return Decision{
				Action: ActionTempfail,
				Reply:  fmt.Sprintf("451 4.7.1 Temporary failure validating the ARC chain of %s; try again later", replySafe(sealer)),
			}
		}
	}
	if d.Status == verify.StatusTemperror {
		return Decision{
			Action: ActionTempfail,
			Reply:  fmt.Sprintf("451 4.7.1 Temporary failure evaluating the DMARC policy of %s; try again later", replySafe(d.AuthorDomain)),
		}
	}
	switch d.Disposition {
	case dmarc.PolicyReject:
		return Decision{
			Action: ActionReject,
			Reply:  fmt.Sprintf("550 5.7.1 Message rejected: DMARC policy of %s is reject and the message failed DMARC (%s)", replySafe(d.PolicyDomain), replySafe(d.Reason)),
		}
	case dmarc.PolicyQuarantine:
		if p.Quarantine == QuarantineHold {
			return Decision{Action: ActionQuarantine}
		}
	}
	return accept
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
// stopped on a temporary failure, or "".
func (p *Policy) trustedPending(a *arc.Result) string {
	if a == nil || a.Status != verify.StatusTemperror {
		return ""
	}
	for i := len(a.Sets) - 1; i >= 0; i-- {
		for _, t := range p.TrustedSealers {
			if sameDomain(a.Sets[i].Domain, t) {
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
