package dmarc

import (
	"context"
	"fmt"

	"github.com/authmilter/authmilter/dnscache"
	"golang.org/x/net/publicsuffix"
)

// OrgDomainFinder is a method of finding Organizational Domains and the DMARC
// Policy Record that applies to an Author Domain. TreeWalk implements RFC
// 9989 (the default); PSL implements RFC 7489. Alignment compares
// Organizational Domains from the same finder, never a mix.
//
// Domains passed in are normalised: A-labels, lower case, no trailing dot.
// A lookup failure other than NXDOMAIN/NODATA is returned wrapped in ErrDNS.
type OrgDomainFinder interface {
	// Discover performs DMARC policy discovery for an Author Domain and
	// finds its Organizational Domain.
	Discover(ctx context.Context, r dnscache.Resolver, author string) (Discovery, error)
	// OrgDomain returns the Organizational Domain of domain, for relaxed
	// identifier alignment.
	OrgDomain(ctx context.Context, r dnscache.Resolver, domain string) (string, error)
}

// Discovery is the outcome of policy discovery for one Author Domain.
type Discovery struct {
	// Record is the DMARC Policy Record that applies, or nil when there is
	// none (the DMARC mechanism does not apply, RFC 9989 §4.10.1).
	Record *Record
	// PolicyDomain is the domain Record was published at (RFC 9989
	// §3.2.5): the Author Domain, its Organizational Domain, or (tree walk
	// only) its Public Suffix Domain. Empty when Record is nil.
	PolicyDomain string
	// OrgDomain is the Author Domain's Organizational Domain.
	OrgDomain string
	// Discarded lists the domains at which several DMARC records were found
	// and all discarded (RFC 9989 §4.10 step 2, RFC 7489 §6.6.3 step 5).
	Discarded []string
}

// PSL finds Organizational Domains with the Public Suffix List, as RFC 7489
// §3.2 does, using the list compiled into golang.org/x/net/publicsuffix, and
// discovers policy as RFC 7489 §6.6.3 does: the Author Domain's record, else
// its Organizational Domain's.
//
// Both sections of the list are used, ICANN and PRIVATE. RFC 7489 §3.2
// defines the Organizational Domain as the one "registered with a domain
// name registrar"; PRIVATE entries (github.io, blogspot.com, ...) are
// exactly the names under which unrelated parties get their own domains, so
// treating them as one organisation would let one tenant align with
// another. The PSL test vectors assume the same (example.uk.com).
type PSL struct{}

// Registrable returns the registrable domain of domain (the public suffix
// plus one label, RFC 7489 §3.2 steps 2–4), or an error when domain is
// itself a public suffix or is not a valid name. domain may be in any case,
// with a trailing dot and in U-labels: it is normalised first.
func (PSL) Registrable(domain string) (string, error) {
	d, err := normalizeDomain(domain)
	if err != nil {
		return "", err
	}
	return publicsuffix.EffectiveTLDPlusOne(d)
}

// OrgDomain implements OrgDomainFinder. A domain that is itself a public
// suffix, for which RFC 7489 §3.2 step 4 has no further label to add, is
// its own Organizational Domain.
func (p PSL) OrgDomain(_ context.Context, _ dnscache.Resolver, domain string) (string, error) {
	org, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return domain, nil
	}
	return org, nil
}

// Discover implements OrgDomainFinder with RFC 7489 §6.6.3: query the
// Author Domain; if it has no DMARC record, query its Organizational Domain
// (if different). Several DMARC records at the name reached end discovery
// with no policy (step 5).
func (p PSL) Discover(ctx context.Context, r dnscache.Resolver, author string) (Discovery, error) {
	org, _ := p.OrgDomain(ctx, r, author)
	d := Discovery{OrgDomain: org}
	rec, n, err := lookupRecord(ctx, r, author)
	if err != nil {
		return d, err
	}
	if n > 1 {
		d.Discarded = []string{author}
		return d, nil
	}
	if rec != nil {
		d.Record, d.PolicyDomain = rec, author
		return d, nil
	}
	if org == author {
		return d, nil
	}
	rec, n, err = lookupRecord(ctx, r, org)
	if err != nil {
		return d, err
	}
	if n > 1 {
		d.Discarded = []string{org}
	}
	if rec != nil {
		d.Record, d.PolicyDomain = rec, org
	}
	return d, nil
}

// discoveryMethod names f for aggregate reports (RFC 9990 §2.1.1
// "policy_published", discovery_method): "psl" for PSL, "treewalk" for
// TreeWalk and any other finder, which RFC 9989 discovery is.
func discoveryMethod(f OrgDomainFinder) string {
	if _, ok := f.(PSL); ok {
		return "psl"
	}
	return "treewalk"
}

// String names the method for logs.
func (PSL) String() string { return fmt.Sprintf("psl (%s)", publicsuffix.List) }

var (
	_ OrgDomainFinder = PSL{}
	_ OrgDomainFinder = TreeWalk{}
)
