package authres

import (
	"net/netip"
	"strconv"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/verify/dkim"
)

// FromDKIM converts the result of one DKIM signature to a resinfo:
//
//	dkim=<result> (<key size>-bit key; test mode) reason="<why>"
//	    header.d=<d=> header.i=<i=> header.s=<s=> header.a=<a=> header.b=<prefix>
//
// header.d and header.i are the properties RFC 8601 §2.7.1 registers;
// header.s (selector) and header.a (algorithm) are the later IANA
// registrations most receivers write; header.b is the RFC 6008 §4 prefix
// that tells this signature from the others on the message, whose b= values
// are all.
func FromDKIM(s dkim.Signature, all []string) Result {
	out := Result{Method: "dkim", Value: orNone(s.Result)}
	if s.Result != "pass" {
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
			out.Props = append(out.Props, Property{"header", name, value})
		}
	}
	add("d", s.Domain)
	add("i", s.Identifier)
	add("s", s.Selector)
	add("a", s.Algorithm)
	if s.B != "" {
		add("b", HeaderB(s.B, all))
	}
	return out
}

// FromARC converts an ARC chain validation result to a resinfo (RFC 8617
// §7.2 and §4.1.1):
//
//	arc=<result> (i=<N> <sealing domain>) reason="<why>"
//	    header.oldest-pass=<n> smtp.remote-ip=<client>
//
// header.oldest-pass is written when some older AMS no longer validates;
// smtp.remote-ip records the client the chain arrived from, which later hops
// weigh when they decide whether to trust this one.
func FromARC(r arc.Result, client netip.Addr) Result {
	out := Result{Method: "arc", Value: orNone(r.Result)}
	if r.Result != "pass" && r.Result != "none" {
		out.Reason = r.Reason
	}
	if r.Instances > 0 && len(r.Sets) > 0 {
		last := r.Sets[len(r.Sets)-1]
		out.Comment = "i=" + strconv.Itoa(last.Instance) + " " + last.Domain
	}
	if r.Result == "pass" && r.OldestPass > 0 {
		out.Props = append(out.Props, Property{"header", "oldest-pass", strconv.Itoa(r.OldestPass)})
	}
	if client.IsValid() && r.Instances > 0 {
		out.Props = append(out.Props, Property{"smtp", "remote-ip", client.Unmap().String()})
	}
	return out
}
