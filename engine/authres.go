package engine

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/authres"
	"github.com/authmilter/authmilter/verify/dkim"
	"github.com/authmilter/authmilter/verify/dmarc"
	"github.com/authmilter/authmilter/verify/spf"
)

// The results of the verifiers as Authentication-Results resinfo (RFC
// 8601) and as a Received-SPF field (RFC 7208 §9.1). package authres
// formats and sanitises them; what each says is decided here.

// orNone gives none for the zero result.
func orNone(v verify.Status) verify.Status {
	if v == "" {
		return verify.StatusNone
	}
	return v
}

// spfAuthRes converts an SPF result (RFC 7208) to a resinfo:
//
//	spf=<result> (<what the result means>) reason="<why>" smtp.mailfrom=<sender>
//
// with smtp.helo=<HELO> instead for the HELO identity (RFC 8601 §2.7.2).
// The comment is the sentence RFC 7208 §9.1 suggests for Received-SPF; the
// reason names the deciding mechanism, or the error for none, temperror
// and permerror. The explanation of a fail (§6.2) is text from the
// sender's DNS and is left out.
func spfAuthRes(r spf.Result) authres.Result {
	out := authres.Result{
		Method:  "spf",
		Value:   orNone(r.Status),
		Comment: spfSentence(r),
		Reason:  spfReason(r),
	}
	if r.Identity == spf.IdentityHELO {
		helo := r.HELO
		if helo == "" {
			helo = r.Domain
		}
		out.Props = []authres.Property{{Type: "smtp", Name: "helo", Value: helo}}
	} else {
		// RFC 8601 §2.7.2: smtp.mailfrom is the domain or the whole
		// address; the whole <sender> of check_host() is more useful
		// (postmaster@<HELO> for the null reverse-path, RFC 7208 §2.4).
		sender := r.Sender
		if sender == "" {
			sender = r.Domain
		}
		out.Props = []authres.Property{{Type: "smtp", Name: "mailfrom", Value: sender}}
	}
	return out
}

// spfWho is the identity named in sentences: the sender for MAIL FROM,
// the HELO name for HELO.
func spfWho(r spf.Result) string {
	who := r.Sender
	if r.Identity == spf.IdentityHELO && r.HELO != "" {
		who = r.HELO
	}
	if who == "" {
		who = r.Domain
	}
	if who == "" {
		who = "unknown"
	}
	return who
}

// spfSentence says what r means, in the words RFC 7208 §9.1 and RFC 4408
// §7 use as examples for the Received-SPF comment.
func spfSentence(r spf.Result) string {
	who := spfWho(r)
	ip := "unknown"
	if r.IP.IsValid() {
		ip = r.IP.String()
	}
	switch orNone(r.Status) {
	case verify.StatusPass:
		return "domain of " + who + " designates " + ip + " as permitted sender"
	case verify.StatusFail:
		return "domain of " + who + " does not designate " + ip + " as permitted sender"
	case verify.StatusSoftfail:
		return "domain of transitioning " + who + " does not designate " + ip + " as permitted sender"
	case verify.StatusNeutral:
		return ip + " is neither permitted nor denied by domain of " + who
	case verify.StatusNone:
		return "domain of " + who + " does not designate permitted sender hosts"
	case verify.StatusTemperror:
		return "temporary error in processing during lookup of " + who
	case verify.StatusPermerror:
		return "permanent error in processing during lookup of " + who
	}
	return ""
}

// spfReason names the error, else the mechanism that decided.
func spfReason(r spf.Result) string {
	switch {
	case r.Err != nil && r.Mechanism != "" && r.Mechanism != "default":
		return r.Err.Error() + " (at " + r.Mechanism + ")"
	case r.Err != nil:
		return r.Err.Error()
	case r.Mechanism == "default":
		return "no mechanism matched" // RFC 7208 §4.7
	case r.Mechanism != "":
		return "mechanism " + r.Mechanism + " matched"
	}
	return ""
}

// receivedSPF returns the value of a Received-SPF header field for r (RFC
// 7208 §9.1), receiver being the name of the host that did the check:
// problem= carries the error of none, temperror and permerror in public
// words, mechanism=
// the term that decided ("default" when none matched).
func receivedSPF(r spf.Result, receiver string) string {
	f := authres.ReceivedSPF{
		Status:       r.Status,
		Comment:      spfSentence(r),
		EnvelopeFrom: r.Sender,
		HELO:         r.HELO,
		Receiver:     receiver,
		Identity:     string(r.Identity),
		Mechanism:    r.Mechanism,
	}
	if r.IP.IsValid() {
		f.ClientIP = r.IP.String()
	}
	// The field is passed on with the message: the error's public words,
	// not its chain, which names resolvers and zone files (public.go).
	f.Problem = publicSPFError(r)
	return authres.FormatReceivedSPF(f)
}

// dmarcAuthRes converts a DMARC result to a resinfo:
//
//	dmarc=<result> (p=reject dis=quarantine, lowered by t=y) reason="<why>"
//	    header.from=<author domain> policy.dmarc=<policy published>
//
// header.from is the property RFC 7489 §11.1 registers for the method;
// policy.dmarc (a property of the policy ptype, RFC 8601 §2.3) carries the
// policy published for the message: after sp/np selection, before t=y and
// pct. The comment gives the tag that applied with its policy, the
// disposition, and why the disposition is less strict than the policy;
// the reason is dmarc.Result.Reason with any RecordNote.
func dmarcAuthRes(r dmarc.Result) authres.Result {
	out := authres.Result{
		Method: "dmarc",
		Value:  orNone(r.Status),
		Reason: r.Reason,
	}
	if r.RecordNote != "" {
		if out.Reason != "" {
			out.Reason += "; "
		}
		out.Reason += r.RecordNote
	}
	var c []string
	if r.Policy != "" {
		tag := r.Applied
		if tag == "" {
			tag = dmarc.TagP
		}
		c = append(c, string(tag)+"="+string(r.Policy))
	}
	if r.Disposition != "" {
		c = append(c, "dis="+string(r.Disposition))
	}
	comment := strings.Join(c, " ")
	switch r.Reduced {
	case dmarc.NotReduced:
	case dmarc.ReducedTesting:
		comment += ", lowered by t=y"
	case dmarc.ReducedSampling:
		comment += ", lowered by pct"
	default:
		comment += ", lowered by " + string(r.Reduced)
	}
	out.Comment = strings.TrimPrefix(comment, ", ")
	if r.AuthorDomain != "" {
		out.Props = append(out.Props, authres.Property{Type: "header", Name: "from", Value: r.AuthorDomain})
	}
	if r.Policy != "" {
		out.Props = append(out.Props, authres.Property{Type: "policy", Name: "dmarc", Value: string(r.Policy)})
	}
	return out
}

// dkimAuthRes converts the result of one DKIM signature to a resinfo:
//
//	dkim=<result> (<key size>-bit key; test mode) reason="<why>"
//	    header.d=<d=> header.i=<i=> header.s=<s=> header.a=<a=> header.b=<prefix>
//
// header.d and header.i are the properties RFC 8601 §2.7.1 registers;
// header.s (selector) and header.a (algorithm) are the later IANA
// registrations most receivers write; header.b is the RFC 6008 §4 prefix
// that tells this signature from the others on the message, whose b= values
// are all.
func dkimAuthRes(s dkim.Signature, all []string) authres.Result {
	out := authres.Result{Method: "dkim", Value: orNone(s.Status)}
	if s.Status != verify.StatusPass {
		out.Reason = s.Reason
	}
	var c string
	if s.KeyBits > 0 {
		c = strconv.Itoa(s.KeyBits) + "-bit key"
	}
	if s.KeyTesting {
		if c != "" {
			c += "; "
		}
		c += "test mode" // key t=y (RFC 6376 §3.6.1)
	}
	out.Comment = c
	add := func(name, value string) {
		if value != "" {
			out.Props = append(out.Props, authres.Property{Type: "header", Name: name, Value: value})
		}
	}
	add("d", s.Domain)
	add("i", s.Identifier)
	add("s", s.Selector)
	add("a", s.Algorithm)
	if s.B != "" {
		add("b", authres.HeaderB(s.B, all))
	}
	return out
}

// arcAuthRes converts an ARC chain validation result to a resinfo (RFC 8617
// §7.2 and §4.1.1):
//
//	arc=<result> (i=<N> <sealing domain>) reason="<why>"
//	    header.oldest-pass=<n> smtp.remote-ip=<client>
//
// header.oldest-pass is written when some older AMS no longer validates;
// smtp.remote-ip records the client the chain arrived from, which later hops
// weigh when they decide whether to trust this one.
func arcAuthRes(r arc.Result, client netip.Addr) authres.Result {
	out := authres.Result{Method: "arc", Value: orNone(r.Status)}
	if r.Status != verify.StatusPass && r.Status != verify.StatusNone {
		out.Reason = r.Reason
	}
	if r.Instances > 0 && len(r.Sets) > 0 {
		last := r.Sets[len(r.Sets)-1]
		out.Comment = "i=" + strconv.Itoa(last.Instance) + " " + last.Domain
	}
	if r.Status == verify.StatusPass && r.OldestPass > 0 {
		out.Props = append(out.Props, authres.Property{Type: "header", Name: "oldest-pass", Value: strconv.Itoa(r.OldestPass)})
	}
	if client.IsValid() && r.Instances > 0 {
		out.Props = append(out.Props, authres.Property{Type: "smtp", Name: "remote-ip", Value: client.Unmap().String()})
	}
	return out
}
