package engine

import (
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strconv"
	"strings"

	"github.com/authmilter/authmilter/domain"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/dmarc"
	"github.com/authmilter/authmilter/verify/spf"
)

// ListAction says what happens to a message with a List-Id field that
// fails DMARC and that no trusted ARC sealer vouches for.
type ListAction string

// The list actions.
const (
	// ListPolicy applies the DMARC disposition, as for any other message.
	ListPolicy ListAction = "policy"
	// ListQuarantine lowers reject to quarantine.
	ListQuarantine ListAction = "quarantine"
	// ListAccept accepts the message; the header carries the verdict.
	ListAccept ListAction = "accept"
)

// FromChecks says what happens to a message whose From field breaks the
// rules of RFC 5322 §3.6 that DMARC depends on.
type FromChecks string

// The From check modes.
const (
	FromChecksOff    FromChecks = "off"
	FromChecksReject FromChecks = "reject"
)

// exempt returns the local rule that exempts a message failing DMARC from
// its disposition, or the zero Override. The rules are the allowlists
// (client networks, From domains, authenticated DKIM and SPF domains), the
// envelope sender's domain in IgnoreMailFrom, and every recipient in
// IgnoreRcpt.
func (p *Policy) exempt(f *Facts) Override {
	if inNetworks(p.AllowNetworks, f.ClientIP) {
		return Override{OverrideLocalPolicy, "client " + f.ClientIP.Unmap().String() + " in policy.allow_networks"}
	}
	if dom := f.DMARC.AuthorDomain; dom != "" {
		for _, allowed := range p.AllowDomains {
			if sameOrSub(dom, allowed) {
				return Override{OverrideLocalPolicy, "From domain " + dom + " in policy.allow_domains"}
			}
		}
	}
	// Allowlist entries by authenticated identity: a signature that
	// verified with d=DOMAIN (RFC 6376 §3.5), an SPF pass for the MAIL
	// FROM domain (RFC 7208 §2.4).
	for _, s := range f.DKIM {
		if s.Status != verify.StatusPass {
			continue
		}
		for _, allowed := range p.AllowDKIM {
			if sameDomain(s.Domain, allowed) {
				return Override{OverrideLocalPolicy, "DKIM pass for " + allowed + " in policy.allow_domains"}
			}
		}
	}
	if s := f.SPF; s != nil && s.Status == verify.StatusPass && s.Identity != spf.IdentityHELO {
		for _, allowed := range p.AllowSPF {
			if sameDomain(s.Domain, allowed) {
				return Override{OverrideLocalPolicy, "SPF pass for " + allowed + " in policy.allow_domains"}
			}
		}
	}
	if dom := mailDomain(f.MailFrom); dom != "" {
		for _, ignored := range p.IgnoreMailFrom {
			if sameOrSub(dom, ignored) {
				// Domains in Authentication-Results are A-labels.
				if n, err := domain.Parse(dom); err == nil {
					dom = n.ASCII
				}
				return Override{OverrideLocalPolicy, "MAIL FROM domain " + dom + " in policy.ignore_mail_from"}
			}
		}
	}
	if n, _ := p.ignoredRcpts(f.Rcpts); n > 0 && n == len(f.Rcpts) {
		return Override{OverrideLocalPolicy, "every recipient in policy.ignore_rcpt"}
	}
	return Override{}
}

// ignoredRcpts counts the recipients that match IgnoreRcpt and returns the
// first of them.
func (p *Policy) ignoredRcpts(rcpts []string) (n int, first string) {
	if len(p.IgnoreRcpt) == 0 {
		return 0, ""
	}
	for _, r := range rcpts {
		r = strings.Trim(strings.TrimSpace(r), "<>")
		if p.rcptIgnored(r) {
			if n == 0 {
				first = r
			}
			n++
		}
	}
	return n, first
}

// rcptIgnored matches one recipient against IgnoreRcpt entries: a whole
// address (postmaster@example.com), a local part at any domain
// (postmaster@), or a domain and its subdomains (example.com).
func (p *Policy) rcptIgnored(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	local, dom := addr, ""
	if at >= 0 {
		local, dom = addr[:at], addr[at+1:]
	}
	for _, e := range p.IgnoreRcpt {
		switch i := strings.LastIndexByte(e, '@'); {
		case i < 0:
			if dom != "" && sameOrSub(dom, e) {
				return true
			}
		case i == len(e)-1:
			if at >= 0 && strings.EqualFold(local, e[:i]) {
				return true
			}
		default:
			if at >= 0 && strings.EqualFold(local, e[:i]) && sameDomain(dom, e[i+1:]) {
				return true
			}
		}
	}
	return false
}

// lower applies the rules that lower a DMARC reject without lifting it: a
// mailing list (dmarc.list_action: quarantine) and a message with some,
// not all, recipients in IgnoreRcpt. It returns the zero Override when
// neither applies.
func (p *Policy) lower(f *Facts) (Action, Override) {
	d := f.DMARC
	if d.Status != verify.StatusFail || d.Disposition != dmarc.PolicyReject {
		return "", Override{}
	}
	if f.ListID && p.ListAction == ListQuarantine {
		return p.quarantineAction(), Override{OverrideMailingList, "List-Id field, dmarc.list_action: quarantine"}
	}
	// Some recipients exempt, some not: rejecting would lose the mail of
	// the exempt ones, accepting would let anyone pass DMARC by adding
	// postmaster@ to a forgery. Held, nothing is lost and nothing passes
	// unseen.
	if n, first := p.ignoredRcpts(f.Rcpts); n > 0 {
		return p.quarantineAction(), Override{OverrideLocalPolicy,
			fmt.Sprintf("recipient %s in policy.ignore_rcpt, %d of %d recipients: quarantined, not rejected", first, n, len(f.Rcpts))}
	}
	return "", Override{}
}

// quarantineAction is how a quarantine is carried out.
func (p *Policy) quarantineAction() Action {
	if p.Quarantine == QuarantineHold {
		return ActionQuarantine
	}
	return ActionAccept
}

// fromProblem names what is wrong with the From fields for DMARC, or "".
// RFC 5322 §3.6 requires exactly one From field; RFC 9989 §5.3.1 needs a
// domain in it to evaluate, and a From with several addresses leaves the
// policy to apply open (OpenDMARC's RequiredHeaders and
// RejectMultiValueFrom reject both).
func fromProblem(from []string) string {
	switch len(from) {
	case 0:
		return "no From header field"
	case 1:
	default:
		return strconv.Itoa(len(from)) + " From header fields"
	}
	p := mail.AddressParser{WordDecoder: &mime.WordDecoder{
		// Only the addresses matter: encoded words in any charset pass.
		CharsetReader: func(_ string, in io.Reader) (io.Reader, error) { return in, nil },
	}}
	if list, err := p.ParseList(unfoldValue(from[0])); err == nil && len(list) > 1 {
		return "a From header field with " + strconv.Itoa(len(list)) + " addresses"
	}
	domains, err := dmarc.AuthorDomains(from)
	switch {
	case err != nil:
		return "a From header field without a parsable domain"
	case len(domains) > 1:
		return "a From header field with several addresses"
	}
	return ""
}

// mailDomain is the domain of an envelope address, "" for the null
// reverse-path or an address without one.
func mailDomain(addr string) string {
	addr = strings.Trim(strings.TrimSpace(addr), "<>")
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

// unfoldValue removes the line breaks of a folded field value.
func unfoldValue(v string) string {
	return strings.NewReplacer("\r\n", "", "\n", "").Replace(v)
}

// facts gathers what Decide weighs once the results are in.
func (m *Evaluation) facts(v *Verdict) Facts {
	f := Facts{
		ClientIP:  m.env.ClientIP,
		MailFrom:  m.env.MailFrom,
		Rcpts:     m.env.Rcpts,
		DMARC:     v.DMARC,
		ARC:       v.ARC,
		SPF:       v.SPF,
		DKIM:      v.DKIM,
		FromKnown: m.limitErr == nil,
	}
	if f.FromKnown {
		f.From = m.fieldValues("From")
		f.ListID = len(m.fieldValues("List-Id")) > 0
	}
	return f
}
