package dmarc

import (
	"context"
	"slices"
	"sync"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/domain"
	"github.com/authmilter/authmilter/verify"
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
	errs      map[string]error  // identifier domain → why its walk failed (prefetch)
	// skipped holds the identifier domains from which no tree walk was
	// made because no answer could have made them align.
	skipped map[string]bool
}

// couldAlign reports whether an identifier domain can align with the
// Author Domain under mode whatever the DNS says about it, and so whether
// looking it up could change anything.
//
// Strict alignment is identity (RFC 9989 §4.4). For relaxed alignment the
// Organizational Domains must be equal; an Organizational Domain is always
// the domain itself or one of its parents (§4.10.2), so the identifier's
// can equal the Author Domain's Organizational Domain only when that is the
// identifier's domain or a parent of it. Any other identifier — above all
// one under a domain its sender controls, such as attacker.example when
// the Author Domain is victim.example — is not aligned, and no query about
// it is required: its DNS must not decide the verdict (§5.3.6 leaves a
// result undecided only for a required query that failed).
func (a *aligner) couldAlign(id string, mode Mode) bool {
	if id == a.author {
		return true
	}
	if mode == ModeStrict {
		return false
	}
	return domain.IsSameOrUnder(id, a.authorOrg)
}

// align returns how domain aligns with the Author Domain under mode, and
// the identifier's Organizational Domain when one had to be found.
//
// RFC 9989 §4.4: strict alignment is identity (case-insensitive; domains
// here are already lower case), relaxed alignment is equality of the
// Organizational Domains, found with the same method for both (§4.10.2).
// §4.10.2 starts a tree walk at an identifier only when it passed (the
// caller asks only for those), and couldAlign rules out the rest without a
// query: no walk when the domains are identical, when the mode is strict
// (§4.10.2 note), or when no answer could make them align.
func (a *aligner) align(ctx context.Context, domain string, mode Mode) (Alignment, string, error) {
	if domain == a.author {
		return AlignedStrict, a.authorOrg, nil
	}
	if !a.couldAlign(domain, mode) {
		if mode != ModeStrict {
			a.skip(domain)
		}
		return NotAligned, "", nil
	}
	if err := a.errs[domain]; err != nil {
		return NotAligned, "", err
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

// skip records that the walk from domain was not made.
func (a *aligner) skip(domain string) {
	if a.skipped == nil {
		a.skipped = map[string]bool{}
	}
	a.skipped[domain] = true
}

// prefetch finds the Organizational Domains of several identifier domains
// at once, each walk on its own goroutine, for align to use: the walks of
// a message's SPF and DKIM identifiers then cost one round trip together,
// not one each. Each walk decides exactly as on its own. With the answers
// in memory, or with a cache-only context, nothing is started: align walks on
// the caller's goroutine.
func (a *aligner) prefetch(ctx context.Context, domains []string) {
	if len(domains) < 2 || dnscache.IsCacheOnly(ctx) {
		return
	}
	if dnscache.FromMemory(ctx, a.r, func(pctx context.Context) {
		for _, d := range domains {
			if _, err := a.finder.OrgDomain(pctx, a.r, d); err != nil {
				return
			}
		}
	}) {
		return
	}
	orgs := make([]string, len(domains))
	errs := make([]error, len(domains))
	finder, r := a.finder, a.r // not a: the aligner stays on the stack
	var wg sync.WaitGroup
	for i, d := range domains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			orgs[i], errs[i] = finder.OrgDomain(ctx, r, d)
		}()
	}
	wg.Wait()
	for i, d := range domains {
		if errs[i] != nil {
			if a.errs == nil {
				a.errs = map[string]error{}
			}
			a.errs[d] = errs[i]
		} else {
			a.orgs[d] = orgs[i]
		}
	}
}

// walksNeeded returns the distinct identifier domains among ids whose
// alignment needs their Organizational Domain: passed, could align, and
// not identical to the Author Domain.
func (a *aligner) walksNeeded(ids []*Identifier) []string {
	var out []string
	for _, id := range ids {
		if id.Status != verify.StatusPass || id.Err != nil || id.Domain == a.author || !a.couldAlign(id.Domain, id.Mode) {
			continue
		}
		if _, ok := a.orgs[id.Domain]; !ok && !slices.Contains(out, id.Domain) {
			out = append(out, id.Domain)
		}
	}
	return out
}
