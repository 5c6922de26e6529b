package spf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/verify"
)

// This file is check_host() (RFC 7208 §4): record lookup, evaluation of the
// terms in order, redirect, and the lookup limits of §4.6.4.

// maxDepth bounds the nesting of include and redirect whatever the
// configured lookup limit, to keep the recursion shallow.
const maxDepth = 32

// checker holds the state of one evaluation: the inputs, which are fixed
// for the whole check (§4.1), and the counters that include and redirect
// share with the record that led to them (§4.6.4).
type checker struct {
	ctx      context.Context
	r        dnscache.Resolver
	ip       netip.Addr // never IPv4-mapped (§5: treated as IPv4)
	sender   string
	local    string
	origin   string // the domain of the sender, %{o}
	helo     string
	receiver string
	// eaiLocal is set when the local part is not ASCII: terms whose
	// domain-spec uses %{l} or %{s} then match nothing (RFC 8616 §4).
	eaiLocal bool
	now      func() time.Time

	maxLookups, maxVoid int
	lookups, voids      int

	ptr ptrState
}

// outcome is what one check_host() returns, with what the top level needs
// to report it.
type outcome struct {
	result verify.Status
	mech   string // the term that decided, "default" when none did
	err    error
	// For a fail: the exp= of the record that decided, and its domain, the
	// %{d} of the explanation (§6.2). exp is nil without one.
	exp       *modifier
	expDomain string
}

func errorOutcome(result verify.Status, err error) outcome {
	return outcome{result: result, err: err}
}

// dnsOutcome turns the failure of a lookup that must succeed into
// temperror (§4.4, §5). When the context has ended, the error says so too,
// so that callers can tell an exhausted time budget from a DNS failure.
func (c *checker) dnsOutcome(qtype, name string, err error) outcome {
	if ctxErr := c.ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w (%w)", err, ctxErr)
	}
	return errorOutcome(verify.StatusTemperror, fmt.Errorf("%w: %s %s: %w", ErrDNS, qtype, name, err))
}

// isVoid reports whether a failed lookup was answered NXDOMAIN or NODATA,
// which evaluation treats as an empty answer (§5); any other failure is a
// DNS error that gives temperror.
func isVoid(err error) bool {
	return errors.Is(err, dnscache.ErrNXDomain) || errors.Is(err, dnscache.ErrNoData)
}

// checkHost is check_host(<ip>, <domain>, <sender>) of §4 for the current
// domain; the IP address and sender are the checker's. depth counts the
// includes and redirects that led here.
func (c *checker) checkHost(domain string, depth int) outcome {
	if depth > maxDepth {
		return errorOutcome(verify.StatusPermerror, fmt.Errorf("%w: nested more than %d deep at %s", ErrTooManyLookups, maxDepth, domain))
	}
	rec, out, ok := c.fetchRecord(domain)
	if !ok {
		return out
	}
	// §4.6.2: evaluate the mechanisms from left to right; the first match
	// decides.
	for i := range rec.directives {
		d := &rec.directives[i]
		matched, out, ok := c.match(d, domain, depth)
		if !ok {
			out.mech = d.text
			return out
		}
		if matched {
			return outcome{result: d.result, mech: d.text, exp: rec.exp, expDomain: domain}
		}
	}
	// §6.1: redirect applies only when no mechanism matched (and never
	// after "all", which always matches).
	if rec.redirect != nil {
		out := c.redirect(rec.redirect, domain, depth)
		if out.mech == "" {
			out.mech = rec.redirect.text
		}
		return out
	}
	// §4.7: no match and no redirect gives neutral.
	return outcome{result: verify.StatusNeutral, mech: "default"}
}

// fetchRecord looks up and parses the SPF record of domain (§4.4, §4.5).
// When it reports false, the outcome is the result of check_host().
func (c *checker) fetchRecord(domain string) (*record, outcome, bool) {
	if err := c.ctx.Err(); err != nil {
		return nil, c.dnsOutcome("TXT", domain, err), false
	}
	txts, _, err := c.r.LookupTXT(c.ctx, domain)
	if err != nil {
		if isVoid(err) {
			// §4.3 and §4.4: no such domain, or no TXT records, gives none.
			return nil, errorOutcome(verify.StatusNone, fmt.Errorf("%w at %s: %w", ErrNoRecord, domain, err)), false
		}
		return nil, c.dnsOutcome("TXT", domain, err), false
	}
	// §4.5: keep the records that start with "v=spf1"; none gives none,
	// more than one permerror.
	found, n := "", 0
	for _, txt := range txts {
		if isSPFRecord(txt) {
			found = txt
			n++
		}
	}
	switch {
	case n == 0:
		return nil, errorOutcome(verify.StatusNone, fmt.Errorf("%w at %s", ErrNoRecord, domain)), false
	case n > 1:
		return nil, errorOutcome(verify.StatusPermerror, fmt.Errorf("%w at %s (%d)", ErrMultipleRecords, domain, n)), false
	}
	rec, err := parseRecord(found)
	if err != nil {
		return nil, errorOutcome(verify.StatusPermerror, fmt.Errorf("record at %s: %w", domain, err)), false
	}
	return rec, outcome{}, true
}

// redirect evaluates redirect=domain-spec (§6.1): check_host() at the
// target replaces this record's result, and a target without a record is a
// permerror.
func (c *checker) redirect(m *modifier, domain string, depth int) outcome {
	if err := c.countLookup(m.text); err != nil {
		return errorOutcome(verify.StatusPermerror, err)
	}
	target, kind := c.target(m.domain, domain)
	if kind != targetOK {
		// A name no query can be made for, or one built from a non-ASCII
		// local part (RFC 8616 §4): no record can be found there.
		return errorOutcome(verify.StatusPermerror, fmt.Errorf("%s: %w: invalid target name", m.text, ErrRedirectNone))
	}
	out := c.checkHost(target, depth+1)
	if out.result == verify.StatusNone {
		return errorOutcome(verify.StatusPermerror, fmt.Errorf("%s: %w: %w", m.text, ErrRedirectNone, out.err))
	}
	return out
}

// countLookup counts one DNS-querying term (include, a, mx, ptr, exists,
// redirect) against the limit of §4.6.4.
func (c *checker) countLookup(term string) error {
	if c.lookups >= c.maxLookups {
		return fmt.Errorf("%w: %q would be term %d, over the limit of %d", ErrTooManyLookups, term, c.lookups+1, c.maxLookups)
	}
	c.lookups++
	return nil
}

// countVoid counts a term whose query was answered NXDOMAIN or NODATA
// against the void-lookup limit of §4.6.4.
func (c *checker) countVoid(term string) error {
	c.voids++
	if c.maxVoid >= 0 && c.voids > c.maxVoid {
		return fmt.Errorf("%w: %q is void lookup %d, over the limit of %d", ErrVoidLookups, term, c.voids, c.maxVoid)
	}
	return nil
}

// env returns the macro values with domain as %{d}.
func (c *checker) env(domain string) *macroEnv {
	return &macroEnv{
		sender:   c.sender,
		local:    c.local,
		origin:   c.origin,
		domain:   domain,
		helo:     c.helo,
		receiver: c.receiver,
		ip:       c.ip,
		now:      c.now,
		ptr:      func() string { return c.validatedName(domain) },
	}
}

// target returns the name a term with domain-spec ms queries: ms expanded
// with domain as %{d}, or domain itself when ms is nil (§4.8). It reports
// targetInvalid when the expansion is not a usable name (see targetName),
// and targetEAI when ms expands a local part that is not ASCII.
func (c *checker) target(ms macroString, domain string) (string, targetKind) {
	if ms == nil {
		return domain, targetOK
	}
	if s, ok := ms.isLiteral(); ok {
		return targetOf(targetName(s))
	}
	if c.eaiLocal && ms.uses('l', 's') {
		// RFC 8616 §4: "If the local part contains non-ASCII characters,
		// terms that include %{s} or %{l} do not match anything", since
		// such a local part cannot be published as a DNS label.
		return "", targetEAI
	}
	s, err := ms.expand(c.env(domain))
	if err != nil {
		return "", targetInvalid
	}
	return targetOf(targetName(s))
}

// targetKind is what target found.
type targetKind uint8

const (
	targetOK      targetKind = iota
	targetInvalid            // no name a query can be made for
	targetEAI                // a macro of a non-ASCII local part (RFC 8616 §4)
)

func targetOf(name string, ok bool) (string, targetKind) {
	if !ok {
		return "", targetInvalid
	}
	return name, targetOK
}
