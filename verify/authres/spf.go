package authres

import (
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/spf"
)

// FromSPF converts an SPF result (RFC 7208) to a resinfo:
//
//	spf=<result> (<what the result means>) reason="<why>" smtp.mailfrom=<sender>
//
// with smtp.helo=<HELO> instead for the HELO identity (RFC 8601 §2.7.2).
// The comment is the sentence RFC 7208 §9.1 suggests for Received-SPF; the
// reason names the deciding mechanism, or the error for none, temperror
// and permerror. The explanation of a fail (§6.2) is text from the
// sender's DNS and is left out.
func FromSPF(r spf.Result) Result {
	out := Result{
		Method:  "spf",
		Value:   orNone(r.Result),
		Comment: spfSentence(r),
		Reason:  spfReason(r),
	}
	if r.Identity == spf.IdentityHELO {
		helo := r.HELO
		if helo == "" {
			helo = r.Domain
		}
		out.Props = []Property{{"smtp", "helo", helo}}
	} else {
		// RFC 8601 §2.7.2: smtp.mailfrom is the domain or the whole
		// address; the whole <sender> of check_host() is more useful
		// (postmaster@<HELO> for the null reverse-path, RFC 7208 §2.4).
		sender := r.Sender
		if sender == "" {
			sender = r.Domain
		}
		out.Props = []Property{{"smtp", "mailfrom", sender}}
	}
	return out
}

// orNone gives none for the zero Result.
func orNone(v verify.Result) verify.Result {
	if v == "" {
		return verify.ResultNone
	}
	return v
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
	switch orNone(r.Result) {
	case verify.ResultPass:
		return "domain of " + who + " designates " + ip + " as permitted sender"
	case verify.ResultFail:
		return "domain of " + who + " does not designate " + ip + " as permitted sender"
	case verify.ResultSoftfail:
		return "domain of transitioning " + who + " does not designate " + ip + " as permitted sender"
	case verify.ResultNeutral:
		return ip + " is neither permitted nor denied by domain of " + who
	case verify.ResultNone:
		return "domain of " + who + " does not designate permitted sender hosts"
	case verify.ResultTemperror:
		return "temporary error in processing during lookup of " + who
	case verify.ResultPermerror:
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
