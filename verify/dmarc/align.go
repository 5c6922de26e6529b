package dmarc

import (
	"context"

	"github.com/authmilter/authmilter/dnscache"
)

// Alignment says how an Authenticated Identifier aligned with the Author
// Domain (RFC 9989 §3.2.10).
type Alignment string

// The alignments.
const (
	NotAligned     Alignment = ""
	AlignedStrict  Alignment = "strict"  // identical domains (§3.2.10.2)
	AlignedRelaxed Alignment = "relaxed" // same Organizational Domain (§3.2.10.1)
)

// aligner checks identifier alignment for one Author Domain, walking each
// identifier's tree at most once.
type aligner struct {
	finder    OrgDomainFinder
	r         dnscache.Resolver
	author    string
	authorOrg string
	orgs      map[string]string // identifier domain → Organizational Domain
}

// align returns how domain aligns with the Author Domain under mode, and
// the identifier's Organizational Domain when one had to be found.
//
// RFC 9989 §4.4: strict alignment is identity (case-insensitive; domains
// here are already lower case), relaxed alignment is equality of the
// Organizational Domains, found with the same method for both (§4.10.2).
// No tree walk is needed when the domains are identical, when the mode is
// strict (§4.10.2 note), or when they do not even share a top-level label.
func (a *aligner) align(ctx context.Context, domain string, mode Mode) (Alignment, string, error) {
	if domain == a.author {
		return AlignedStrict, a.authorOrg, nil
	}
	if mode == ModeStrict || !sameTLD(domain, a.author) {
		return NotAligned, "", nil
	}
	org, ok := a.orgs[domain]
	if !ok {
		var err error
		org, err = a.finder.OrgDomain(ctx, a.r, domain)
		if err != nil {
			return NotAligned, "", err
		}
		a.orgs[domain] = org
	}
	if org == a.authorOrg {
		return AlignedRelaxed, org, nil
	}
	return NotAligned, org, nil
}
