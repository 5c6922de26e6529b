package dmarc

import (
	"errors"
	"fmt"

	"github.com/authmilter/authmilter/verify"
)

// PolicyTag names the tag whose policy applied (RFC 9989 §4.10.1).
type PolicyTag string

// The policy tags.
const (
	TagP  PolicyTag = "p"  // the Author Domain's own record, or no sp/np
	TagSP PolicyTag = "sp" // an existing subdomain of the Policy Domain
	TagNP PolicyTag = "np" // a non-existent subdomain of the Policy Domain
)

// Reduction says why the disposition is less strict than the policy.
type Reduction string

// The reductions.
const (
	NotReduced Reduction = ""
	// ReducedTesting: the record has t=y (RFC 9989 §4.7).
	ReducedTesting Reduction = "t=y"
	// ReducedSampling: the message fell outside the record's pct (RFC
	// 7489 §6.6.4).
	ReducedSampling Reduction = "pct"
)

// Identifier is one Authenticated Identifier candidate and how it aligned.
type Identifier struct {
	Method    string        // "spf" or "dkim"
	Domain    string        // normalised (A-labels, lower case)
	Selector  string        // DKIM s=
	Identity  Identity      // SPF identity
	Status    verify.Status // the SPF or DKIM result
	Mode      Mode          // the mode the record asks for (aspf, adkim)
	Alignment Alignment     // NotAligned unless Status is pass and it aligned
	OrgDomain string        // the identifier's Organizational Domain, when one was looked up
	Err       error         // a failed lookup while checking alignment
}

// Result is the outcome of a DMARC evaluation, with the facts a header
// field, a log line or an aggregate report needs.
type Result struct {
	// Status is pass, fail, none (no policy applies), temperror or
	// permerror (RFC 9989 §9.2).
	Status verify.Status
	// Reason explains Status in a few words, for logs and A-R comments.
	Reason string
	// Err is the underlying error for temperror and permerror, nil
	// otherwise; match with errors.Is.
	Err error

	AuthorDomain string // the RFC5322.From domain (header.from)
	OrgDomain    string // its Organizational Domain
	PolicyDomain string // where Record was found
	// Discovery names how Record was found, in RFC 9990's words
	// (discovery_method): "treewalk" (RFC 9989) or "psl" (RFC 7489).
	Discovery string
	Record    *Record // the DMARC Policy Record that applied, or nil
	// RecordNote is set when Record lacked a valid p (or had an invalid sp
	// or np) and was treated as p=none because it has a valid rua (RFC 9989
	// §4.10.1).
	RecordNote string

	Applied     PolicyTag // which tag supplied Policy
	Policy      Policy    // the policy published for this message
	Disposition Policy    // what to do: Policy after t=y and pct, none unless fail
	Reduced     Reduction // why Disposition is less strict than Policy
	// Sampled reports that pct sampling was applied (pct < 100 and no
	// t=y); Disposition shows the outcome.
	Sampled bool

	SPF  *Identifier  // nil when no SPF result was given
	DKIM []Identifier // one per DKIM result given

	// SkippedWalks counts the identifier domains (SPF or DKIM, passed or
	// temperror) whose Organizational Domain was not looked up because no
	// answer could have made them align (RFC 9989 §4.10.2): with the tree
	// walk, each is a walk not made, at least one DNS query saved. With
	// several Author Domains, the sum over all of them.
	SkippedWalks int

	// Authors holds the result for each Author Domain when From carried
	// more than one; the fields above are then those of the strictest.
	Authors []Result
}

// Aligned returns the identifiers that produced the pass.
func (r *Result) Aligned() []Identifier {
	var out []Identifier
	if r.SPF != nil && r.SPF.Alignment != NotAligned {
		out = append(out, *r.SPF)
	}
	for _, d := range r.DKIM {
		if d.Alignment != NotAligned {
			out = append(out, d)
		}
	}
	return out
}

// temperror turns res into a temperror result for err.
func (res Result) temperror(err error) Result {
	if !errors.Is(err, ErrDNS) {
		err = fmt.Errorf("%w: %w", ErrDNS, err)
	}
	res.Status = verify.StatusTemperror
	res.Err = err
	res.Reason = err.Error()
	res.Disposition = PolicyNone
	return res
}
