package dmarc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/verify"
)

// Identity names the SPF identity whose result is given (RFC 7208 §2.3,
// §2.4).
type Identity string

// The SPF identities.
const (
	// IdentityMailFrom is the RFC5321.MailFrom domain.
	IdentityMailFrom Identity = "mailfrom"
	// IdentityHELO is the HELO/EHLO domain, checked when MAIL FROM is
	// the null path: RFC 7208 §2.4 then makes "postmaster@<HELO>" the
	// MAIL FROM identity, which is what DMARC uses (RFC 9989 §3.2.4).
	IdentityHELO Identity = "helo"
)

// SPF is the SPF result DMARC evaluates.
type SPF struct {
	Status   verify.Status
	Domain   string   // the domain checked: MAIL FROM's, or HELO's for a null path
	Identity Identity // which of the two Domain is
}

// DKIM is the result of one DKIM signature.
type DKIM struct {
	Status   verify.Status
	Domain   string // d=
	Selector string // s=, for reports
}

// Args are the inputs of a DMARC evaluation.
type Args struct {
	// From holds the value of every From header field of the message, in
	// order, as received.
	From []string
	// Authors, when not empty, are the Author Domains AuthorDomains(From)
	// returned; a caller that extracted them already passes them so that
	// Evaluate does not parse From again.
	Authors []string
	// SPF is the SPF result; a zero SPF means none was made.
	SPF SPF
	// DKIM holds one result per DKIM-Signature checked.
	DKIM []DKIM
}

// DefaultMaxAuthorDomains bounds how many distinct Author Domains a message
// may carry before it is refused with permerror (RFC 9989 §11.5).
const DefaultMaxAuthorDomains = 5

// Options tune Evaluate. A nil *Options means the defaults.
type Options struct {
	// Finder is the Organizational Domain method: TreeWalk{} (RFC 9989,
	// the default) or PSL{} (RFC 7489).
	Finder OrgDomainFinder
	// Rand returns a pseudo-random integer in [0, n), for pct sampling.
	// Nil means math/rand/v2.IntN.
	Rand func(n int) int
	// MaxAuthorDomains bounds the distinct Author Domains evaluated (0:
	// DefaultMaxAuthorDomains).
	MaxAuthorDomains int
}

// AuthorLimit is the number of distinct Author Domains Evaluate accepts
// with these options: MaxAuthorDomains, or DefaultMaxAuthorDomains when
// that is unset (o may be nil).
func (o *Options) AuthorLimit() int {
	if o == nil || o.MaxAuthorDomains <= 0 {
		return DefaultMaxAuthorDomains
	}
	return o.MaxAuthorDomains
}

// Evaluate performs DMARC validation of a message (RFC 9989 §5.3) given its
// From header fields and its SPF and DKIM results, and decides the
// disposition the Domain Owner asks for. Every DNS query goes through r.
//
// Decisions where the RFCs leave a choice (doc.go has the full list):
//   - No From field, no address, or an unparseable one: permerror.
//   - Several Author Domains (several addresses, or several From fields):
//     each is evaluated and the strictest result is returned (RFC 9989
//     §11.5, RFC 7489 §6.6.1), up to Options.MaxAuthorDomains; beyond that,
//     permerror.
//   - A temporary DNS failure anywhere discovery needs: temperror. During
//     alignment only when nothing aligned and the failed lookup could have
//     changed that (RFC 9989 §5.3.6). Lookups that could not change it are
//     not made at all (aligner.couldAlign): an identifier outside the
//     Author Domain's Organizational Domain never aligns, whatever its DNS
//     answers, so a sender's own DNS cannot turn fail into temperror.
//
// Evaluate keeps no state between calls and is safe for concurrent use
// (given a resolver that is); within one call each _dmarc name is queried
// at most once.
func Evaluate(ctx context.Context, r dnscache.Resolver, args Args, opts *Options) Result {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Finder == nil {
		o.Finder = TreeWalk{}
	}
	if o.Rand == nil {
		o.Rand = rand.IntN
	}
	o.MaxAuthorDomains = o.AuthorLimit()

	authors := args.Authors
	if len(authors) == 0 {
		var err error
		if authors, err = AuthorDomains(args.From); err != nil {
			return Result{Status: verify.StatusPermerror, Disposition: PolicyNone, Err: err, Reason: err.Error()}
		}
	}
	if len(authors) > o.MaxAuthorDomains {
		err := fmt.Errorf("%w: %d in From, at most %d are evaluated", ErrTooManyAuthors, len(authors), o.MaxAuthorDomains)
		return Result{Status: verify.StatusPermerror, Disposition: PolicyNone, Err: err, Reason: err.Error()}
	}

	e := evaluator{opts: o, r: newMemoResolver(r)}
	e.normalizeIdentifiers(args)
	if len(authors) == 1 {
		res := e.evaluateAuthor(ctx, authors[0])
		if len(args.From) > 1 {
			res.Reason += fmt.Sprintf(" (%d From header fields)", len(args.From))
		}
		return res
	}
	results := make([]Result, len(authors))
	best := 0
	for i, a := range authors {
		results[i] = e.evaluateAuthor(ctx, a)
		if rank(results[i]) > rank(results[best]) {
			best = i
		}
	}
	res := results[best]
	res.Authors = results
	res.SkippedWalks = 0
	for _, r := range results {
		res.SkippedWalks += r.SkippedWalks
	}
	res.Reason = fmt.Sprintf("strictest of %d author domains: %s", len(authors), res.Reason)
	return res
}

// evaluator holds what one Evaluate call shares between Author Domains.
type evaluator struct {
	opts Options
	r    dnscache.Resolver
	spf  *Identifier
	dkim []Identifier
}

// normalizeIdentifiers prepares the identifiers once. An identifier whose
// domain is not a valid name keeps its result but can never align.
func (e *evaluator) normalizeIdentifiers(args Args) {
	if args.SPF.Status != "" {
		id := Identifier{Method: "spf", Domain: args.SPF.Domain, Identity: args.SPF.Identity, Status: args.SPF.Status}
		if id.Identity == "" {
			id.Identity = IdentityMailFrom
		}
		id.Domain, id.Err = normalizeIdentifier(args.SPF.Domain)
		e.spf = &id
	}
	for _, k := range args.DKIM {
		id := Identifier{Method: "dkim", Domain: k.Domain, Selector: k.Selector, Status: k.Status}
		id.Domain, id.Err = normalizeIdentifier(k.Domain)
		e.dkim = append(e.dkim, id)
	}
}

// normalizeIdentifier normalises an identifier's domain; an empty one
// (e.g. no SPF domain for an SPF none) is left empty without error.
func normalizeIdentifier(d string) (string, error) {
	if strings.TrimSpace(d) == "" {
		return "", nil
	}
	n, err := normalizeDomain(d)
	if err != nil {
		return d, err
	}
	return n, nil
}

// evaluateAuthor evaluates one Author Domain.
func (e *evaluator) evaluateAuthor(ctx context.Context, author string) Result {
	res := Result{AuthorDomain: author, Disposition: PolicyNone}
	if e.spf != nil {
		spf := *e.spf
		res.SPF = &spf
	}
	res.DKIM = append([]Identifier(nil), e.dkim...)

	// RFC 9989 §5.3.2, §4.10.1: policy discovery.
	d, err := e.opts.Finder.Discover(ctx, e.r, author)
	res.OrgDomain = d.OrgDomain
	if err != nil {
		return res.temperror(err)
	}
	if d.Record == nil {
		res.Status = verify.StatusNone
		res.Reason = "no DMARC policy record for " + author
		if len(d.Discarded) > 0 {
			res.Reason += "; several DMARC records discarded at _dmarc." + strings.Join(d.Discarded, ", _dmarc.")
		}
		return res
	}
	res.Record, res.PolicyDomain = d.Record, d.PolicyDomain
	res.Discovery = discoveryMethod(e.opts.Finder)

	// RFC 9989 §4.10.1 (and RFC 7489 §6.6.3 step 6): a record without a
	// valid p, or with an invalid sp or np, counts as p=none when it has a
	// valid rua; otherwise no DMARC processing applies. The Result Names
	// registry (RFC 9989 §9.2) calls that permerror: "an improperly
	// formatted DMARC Policy Record".
	p, sp, np := d.Record.Policy, d.Record.SubdomainPolicy, d.Record.NonexistentPolicy
	if p == "" || d.Record.invalid("sp") || d.Record.invalid("np") {
		what := "no valid p tag"
		if p != "" {
			what = "an invalid sp or np tag"
		}
		if !d.Record.HasValidRUA() {
			res.Status = verify.StatusPermerror
			res.Err = fmt.Errorf("%w: _dmarc.%s has %s", ErrNoValidPolicy, d.PolicyDomain, what)
			res.Reason = res.Err.Error()
			return res
		}
		p, sp, np = PolicyNone, "", ""
		res.RecordNote = fmt.Sprintf("_dmarc.%s has %s and a valid rua: treated as p=none", d.PolicyDomain, what)
	}

	// RFC 9989 §4.10.1: p for the Author Domain's own record; for a record
	// of the Organizational or Public Suffix Domain above it, np if the
	// Author Domain does not exist, else sp, falling back to p.
	res.Applied, res.Policy = TagP, p
	if author != d.PolicyDomain {
		if sp != "" {
			res.Applied, res.Policy = TagSP, sp
		}
		if np != "" {
			// The existence query is only needed when np could change the
			// outcome; RFC 9989 §4.7: without np, sp (or p) applies to
			// non-existent subdomains too.
			exists, err := domainExists(ctx, e.r, author)
			if err != nil {
				return res.temperror(err)
			}
			if !exists {
				res.Applied, res.Policy = TagNP, np
			}
		}
	}

	// RFC 9989 §5.3.3–5.3.5: alignment.
	a := aligner{finder: e.opts.Finder, r: e.r, author: author, authorOrg: d.OrgDomain, orgs: map[string]string{}}
	pass, tempErr := e.checkAlignment(ctx, &res, &a)
	res.SkippedWalks = len(a.skipped)
	switch {
	case pass != "":
		res.Status = verify.StatusPass
		res.Reason = pass
		return res
	case tempErr != nil:
		return res.temperror(tempErr)
	}

	res.Status = verify.StatusFail
	res.Reason = "no aligned SPF or DKIM pass for " + author
	res.Disposition = res.Policy
	e.reduce(&res)
	return res
}

// checkAlignment fills the alignment of every identifier and returns a
// description of the first that aligned, or else the temporary failure that
// prevents a fail verdict.
func (e *evaluator) checkAlignment(ctx context.Context, res *Result, a *aligner) (string, error) {
	rec := res.Record
	var pass string
	var lookupErr error
	check := func(id *Identifier, mode Mode) {
		id.Mode = mode
		if id.Status != verify.StatusPass || id.Err != nil {
			return
		}
		al, org, err := a.align(ctx, id.Domain, mode)
		id.Alignment, id.OrgDomain = al, org
		if err != nil {
			id.Err = err
			if lookupErr == nil {
				lookupErr = err
			}
			return
		}
		if al != NotAligned && pass == "" {
			pass = describe(id)
		}
	}
	var ids []*Identifier
	if res.SPF != nil {
		res.SPF.Mode = rec.ASPF
		ids = append(ids, res.SPF)
	}
	for i := range res.DKIM {
		res.DKIM[i].Mode = rec.ADKIM
		ids = append(ids, &res.DKIM[i])
	}
	a.prefetch(ctx, a.walksNeeded(ids))
	for _, id := range ids {
		check(id, id.Mode)
	}
	if pass != "" {
		return pass, nil
	}
	if lookupErr != nil {
		return "", lookupErr
	}
	// A temporary SPF or DKIM failure for an identifier that would align
	// leaves the verdict open: a retry could pass (RFC 9989 §5.3.6).
	// Whether it would is decided by couldAlign alone, without a walk:
	// §4.10.2 walks only from identifiers that passed, and an identifier
	// that cannot align whatever its DNS says must not make the verdict
	// temperror (that DNS may be the sender's own).
	var wouldAlign *Identifier
	for _, id := range ids {
		if id.Status != verify.StatusTemperror || id.Err != nil {
			continue
		}
		if a.couldAlign(id.Domain, id.Mode) {
			if wouldAlign == nil {
				wouldAlign = id
			}
		} else if id.Mode != ModeStrict {
			a.skip(id.Domain)
		}
	}
	if wouldAlign != nil {
		return "", fmt.Errorf("%w: %s temperror for %s, which could align", ErrIdentifierTemperror, strings.ToUpper(wouldAlign.Method), wouldAlign.Domain)
	}
	return "", nil
}

func describe(id *Identifier) string {
	// Concatenation, not fmt: this is on every message's path.
	if id.Method == "spf" {
		return "SPF " + string(id.Identity) + " " + id.Domain + " aligned (" + string(id.Alignment) + ")"
	}
	return "DKIM d=" + id.Domain + " s=" + id.Selector + " aligned (" + string(id.Alignment) + ")"
}
