package engine

import (
	"errors"
	"net/netip"
	"strings"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/verify/authres"
	"github.com/authmilter/authmilter/verify/dkim"
	"github.com/authmilter/authmilter/verify/dmarc"
	"github.com/authmilter/authmilter/verify/spf"
)

// This file keeps Authentication-Results reasons (and SMTP replies) short
// and fit to show a recipient or a sender: the words of the sentinel error
// that decided, never the error chain beneath it, which names resolvers,
// zone files and Go internals. The full error stays in the log line and in
// `authmilter check`.

// spfReasons are the public words of the SPF errors, most specific first.
var spfReasons = []error{
	spf.ErrIncludeNone, spf.ErrRedirectNone, spf.ErrTooManyLookups, spf.ErrVoidLookups,
	spf.ErrTooManyMX, spf.ErrMultipleRecords, spf.ErrSyntax, spf.ErrNoRecord,
	spf.ErrInvalidIP, spf.ErrInvalidDomain,
}

// publicSPFError is the public words of r.Err ("" for none): the A-R
// reason and the Received-SPF problem=.
func publicSPFError(r spf.Result) string {
	if r.Err == nil {
		return ""
	}
	if errors.Is(r.Err, spf.ErrDNS) {
		return publicLookupReason(r.Err, "SPF evaluation failed")
	}
	for _, e := range spfReasons {
		if errors.Is(r.Err, e) {
			return e.Error()
		}
	}
	return "SPF evaluation failed"
}

// publicSPF converts an SPF result to its resinfo with a public reason.
func publicSPF(r spf.Result) authres.Result {
	out := spfAuthRes(r)
	if r.Err == nil {
		return out
	}
	reason := publicSPFError(r)
	// The deciding term is the sender's own DNS data: it helps the
	// reader and reveals nothing of ours.
	if r.Mechanism != "" && r.Mechanism != "default" {
		reason += " (at " + r.Mechanism + ")"
	}
	out.Reason = reason
	return out
}

// publicLookupReason names a failed lookup by its kind.
func publicLookupReason(err error, other string) string {
	switch {
	case errors.Is(err, dnscache.ErrTemporary):
		return "temporary DNS failure"
	case errors.Is(err, dnscache.ErrNXDomain):
		return "no such domain"
	case errors.Is(err, dnscache.ErrNoData):
		return "no record"
	case errors.Is(err, spf.ErrDNS), errors.Is(err, dmarc.ErrDNS):
		// A lookup cut short by the message's deadline.
		return "DNS lookup did not finish"
	}
	return other
}

// publicDKIM converts one DKIM signature's result with a public reason:
// the verifier's short reason, unless it is an error's text.
func publicDKIM(s dkim.Signature, all []string) authres.Result {
	out := dkimAuthRes(s, all)
	if out.Reason != "" && s.Err != nil && strings.Contains(out.Reason, s.Err.Error()) {
		out.Reason = publicLookupReason(s.Err, "signature not verified")
	}
	return out
}

// dmarcReasons are the public words of the DMARC errors.
var dmarcReasons = []error{
	dmarc.ErrNoFrom, dmarc.ErrNoAuthor, dmarc.ErrFromSyntax, dmarc.ErrAuthorDomain,
	dmarc.ErrTooManyAuthors, ErrHeaderLimit,
}

// publicDMARCReason is the DMARC reason fit for a header or a reply.
func publicDMARCReason(d dmarc.Result) string {
	if d.Err == nil {
		return d.Reason // built by the dmarc package from domains and tags
	}
	if errors.Is(d.Err, dmarc.ErrNoValidPolicy) {
		// "record has no valid policy and no valid rua: _dmarc.example.com
		// has no valid p tag": names only the sender's DNS.
		return strings.TrimPrefix(d.Err.Error(), "dmarc: ")
	}
	if errors.Is(d.Err, dmarc.ErrIdentifierTemperror) {
		// The failure was SPF's or DKIM's (their own reasons say which
		// lookup), not a DMARC lookup.
		return "no aligned pass, and a temporary SPF or DKIM failure for an identifier that could align"
	}
	if errors.Is(d.Err, dmarc.ErrDNS) {
		return publicLookupReason(d.Err, "DNS lookup failed") + " during policy discovery"
	}
	for _, e := range dmarcReasons {
		if errors.Is(d.Err, e) {
			return strings.TrimPrefix(e.Error(), "dmarc: ")
		}
	}
	return "DMARC evaluation failed"
}

// publicDMARC converts a DMARC result with a public reason and the
// override, if any, in its comment: "(p=reject dis=reject; override
// trusted_forwarder: ARC sealer lists.example.org reported dmarc=pass)".
func publicDMARC(d dmarc.Result, o Override) authres.Result {
	pub := d
	pub.Reason = publicDMARCReason(d)
	out := dmarcAuthRes(pub)
	if !o.IsZero() {
		out.Comment = joinComment(out.Comment, "override "+o.String())
	}
	return out
}

// arcReasons are the public words of the ARC errors.
var arcReasons = []error{
	arc.ErrTemporary, arc.ErrStructure, arc.ErrFailedUpstream, arc.ErrBodyHash, arc.ErrSignature, arc.ErrSyntax, ErrHeaderLimit,
}

// publicARC converts an ARC result with a public reason.
func publicARC(r arc.Result, client netip.Addr) authres.Result {
	out := arcAuthRes(r, client)
	if out.Reason == "" || r.Err == nil {
		return out
	}
	out.Reason = "chain not validated"
	for _, e := range arcReasons {
		if errors.Is(r.Err, e) {
			out.Reason = strings.TrimPrefix(e.Error(), "arc: ")
			break
		}
	}
	return out
}
