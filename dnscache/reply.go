package dnscache

import (
	"strings"

	"github.com/miekg/dns"
)

// maxCNAMEChain bounds the CNAMEs followed for one question, so that a loop
// or an absurd chain ends the lookup (RFC 1034 §5.3.3 asks resolvers to
// bound their work; common resolvers stop at 8 to 16 links).
const maxCNAMEChain = 8

// interpret turns reply r to the question (qtype, name) into an answer or a
// *net.DNSError. done is false for a temporary failure that another server
// might not have.
func interpret(r *dns.Msg, qtype uint16, name, server string, trustAD bool) (a *answer, done bool, err error) {
	if !r.Response || r.Opcode != dns.OpcodeQuery {
		return nil, false, NewError(ErrTemporary, name, server, "malformed reply: not a query response", false)
	}
	switch r.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	case dns.RcodeServerFailure:
		return nil, false, NewError(ErrTemporary, name, server, "SERVFAIL", false)
	case dns.RcodeRefused:
		return nil, false, NewError(ErrTemporary, name, server, "REFUSED", false)
	default:
		return nil, false, NewError(ErrTemporary, name, server, "response code "+dns.RcodeToString[r.Rcode], false)
	}

	a, final, err := followChain(r, qtype, name, server)
	if err != nil {
		return nil, true, err
	}
	// RFC 6840 §5.8 (RFC 4035 §4.9.3): the AD bit is only meaningful from a
	// validating resolver the configuration trusts, over a secure path.
	a.authentic = trustAD && r.AuthenticatedData

	if r.Rcode == dns.RcodeNameError {
		// RFC 6604 §3: after CNAMEs, the code applies to the last name.
		negativeTTL(r, final, a)
		return a, true, NewError(ErrNXDomain, name, server, "", false)
	}
	if a.size() > 0 {
		return a, true, nil
	}
	// NOERROR without records of the type. RFC 2308 §2.2: a referral (NS
	// records, no SOA) is not NODATA; it means the server is not recursive.
	if !hasSOA(r) && hasNS(r) {
		return nil, false, NewError(ErrTemporary, name, server, "referral from a non-recursive server", false)
	}
	negativeTTL(r, final, a)
	return a, true, NewError(ErrNoData, name, server, "", false)
}

// followChain collects from the answer section the records of type qtype
// owned by name or by the end of the CNAME chain starting at name
// (RFC 1034 §4.3.2 step 3a, §5.2.2). Records that do not belong to the
// chain are ignored. It returns the answer, with the lowest TTL of what it
// used (RFC 2181 §5.2), and the last name of the chain (canonical).
func followChain(r *dns.Msg, qtype uint16, name, server string) (*answer, string, error) {
	a := &answer{}
	owner := name
	for links := 0; ; links++ {
		var cname *dns.CNAME
		for _, rr := range r.Answer {
			h := rr.Header()
			if h.Class != dns.ClassINET || !sameName(h.Name, owner) {
				continue
			}
			switch {
			case h.Rrtype == qtype:
				a.add(rr)
				a.lowerTTL(ttlOf(rr))
			case h.Rrtype == dns.TypeCNAME && cname == nil:
				cname = rr.(*dns.CNAME)
			}
		}
		if a.size() > 0 || cname == nil {
			return a, owner, nil
		}
		if links == maxCNAMEChain {
			return nil, "", NewError(ErrTemporary, name, server, "CNAME chain too long", false)
		}
		a.lowerTTL(ttlOf(cname))
		owner = canonical(cname.Target)
	}
}

// negativeTTL lowers a's TTL to the negative-caching TTL of reply r, when
// its authority section has the SOA record of a zone holding last (the end
// of the CNAME chain): RFC 2308 §5, the lower of the SOA record's TTL and
// its MINIMUM field. Without one the TTL is unknown, and the cache applies
// its default for negative answers.
func negativeTTL(r *dns.Msg, last string, a *answer) {
	for _, rr := range r.Ns {
		soa, ok := rr.(*dns.SOA)
		if !ok || soa.Hdr.Class != dns.ClassINET || !isAtOrUnder(last, canonical(soa.Hdr.Name)) {
			continue
		}
		a.lowerTTL(min(ttlOf(soa), soa.Minttl))
		return
	}
	a.ttlKnown = false
}

func hasSOA(r *dns.Msg) bool {
	for _, rr := range r.Ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			return true
		}
	}
	return false
}

func hasNS(r *dns.Msg) bool {
	for _, rr := range r.Ns {
		if rr.Header().Rrtype == dns.TypeNS {
			return true
		}
	}
	return false
}

// sameName reports whether the name from a message (with trailing dot, any
// case) is the canonical name n.
func sameName(msgName, n string) bool {
	msgName = strings.TrimSuffix(msgName, ".")
	return strings.EqualFold(msgName, n)
}
