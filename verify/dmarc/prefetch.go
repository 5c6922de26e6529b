package dmarc

import (
	"context"
	"fmt"

	"github.com/authmilter/authmilter/dnscache"
)

// Prefetch makes the lookups of DMARC policy discovery (RFC 9989 §4.10.1:
// the record and the tree walk) for domain, through r, and discards what
// they found: with a caching r, Evaluate then finds the answers in memory
// for an Author Domain that is domain, or below the same Organizational
// Domain, and for an SPF or DKIM identifier that is. A mail server calls it
// with what the envelope predicts, the MAIL FROM domain, before the header
// arrives.
//
// domain is normalised as an Author Domain is (A-labels, lower case); an
// invalid one returns its error without a query. The lookups are the
// Finder's of opts (the tree walk by default), bounded by ctx.
func Prefetch(ctx context.Context, r dnscache.Resolver, domain string, opts *Options) error {
	d, err := normalizeDomain(domain)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAuthorDomain, err)
	}
	var finder OrgDomainFinder = TreeWalk{}
	if opts != nil && opts.Finder != nil {
		finder = opts.Finder
	}
	_, err = finder.Discover(ctx, r, d)
	return err
}
