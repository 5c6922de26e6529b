package spf

import (
	"fmt"
	"net/netip"

	"github.com/authmilter/authmilter/verify"
)

// This file evaluates the mechanisms of RFC 7208 §5.

// maxMXNames is the most MX records an mx mechanism may look at (§4.6.4).
const maxMXNames = 10

// match evaluates one mechanism at domain. When ok is false, out is the
// result of check_host() (temperror or permerror).
func (c *checker) match(d *directive, domain string, depth int) (matched bool, out outcome, ok bool) {
	switch d.kind {
	case mechAll:
		return true, outcome{}, true // §5.1
	case mechIP4, mechIP6:
		// §5.6: an IPv4 client never matches ip6, an IPv6 one never ip4;
		// Contains is false across families.
		return d.prefix.Contains(c.ip), outcome{}, true
	}
	// Every other mechanism queries the DNS (§4.6.4).
	if err := c.countLookup(d.text); err != nil {
		return false, errorOutcome(verify.StatusPermerror, err), false
	}
	name, kind := c.target(d.domain, domain)
	if kind == targetEAI {
		return false, outcome{}, true // RFC 8616 §4: matches nothing
	}
	valid := kind == targetOK
	if d.kind == mechInclude {
		return c.include(d, name, valid, depth)
	}
	if !valid {
		// The target is no name a query can be made for: non-existent
		// (§4.8; RFC 7208 leaves the case undefined).
		return false, outcome{}, true
	}
	if err := c.ctx.Err(); err != nil {
		return false, c.dnsOutcome("lookup", name, err), false
	}
	switch d.kind {
	case mechA:
		return c.matchA(d, name)
	case mechMX:
		return c.matchMX(d, name)
	case mechPTR:
		return c.matchPTR(name), outcome{}, true
	case mechExists:
		return c.matchExists(d, name)
	}
	return false, errorOutcome(verify.StatusPermerror, fmt.Errorf("%w: unhandled mechanism %q", ErrSyntax, d.text)), false
}

// include evaluates include:domain-spec (§5.2): a recursive check_host()
// at the target, whose pass matches, whose fail, softfail and neutral do
// not, whose temperror and permerror propagate, and whose none is a
// permerror.
func (c *checker) include(d *directive, name string, valid bool, depth int) (bool, outcome, bool) {
	if !valid {
		return false, errorOutcome(verify.StatusPermerror, fmt.Errorf("%s: %w: invalid target name", d.text, ErrIncludeNone)), false
	}
	out := c.checkHost(name, depth+1)
	switch out.result {
	case verify.StatusPass:
		return true, outcome{}, true
	case verify.StatusFail, verify.StatusSoftfail, verify.StatusNeutral:
		return false, outcome{}, true
	case verify.StatusNone:
		return false, errorOutcome(verify.StatusPermerror, fmt.Errorf("%s: %w: %w", d.text, ErrIncludeNone, out.err)), false
	}
	return false, errorOutcome(out.result, fmt.Errorf("%s: %w", d.text, out.err)), false
}

// lookupAddrs returns the addresses of name of the client's family: A for
// an IPv4 client, AAAA for an IPv6 one (§5.3).
func (c *checker) lookupAddrs(name string) ([]netip.Addr, string, error) {
	if c.ip.Is4() {
		addrs, _, err := c.r.LookupA(c.ctx, name)
		return addrs, "A", err
	}
	addrs, _, err := c.r.LookupAAAA(c.ctx, name)
	return addrs, "AAAA", err
}

// inNetwork reports whether the client is in addr/bits, bits being the
// prefix length for addr's family.
func (c *checker) inNetwork(addr netip.Addr, cidr4, cidr6 int) bool {
	addr = addr.Unmap()
	bits := cidr6
	if addr.Is4() {
		bits = cidr4
	}
	p, err := addr.Prefix(bits)
	return err == nil && p.Contains(c.ip)
}

// matchA is the a mechanism (§5.3).
func (c *checker) matchA(d *directive, name string) (bool, outcome, bool) {
	addrs, qtype, err := c.lookupAddrs(name)
	if err != nil {
		if !isVoid(err) {
			return false, c.dnsOutcome(qtype, name, err), false
		}
		if err := c.countVoid(d.text); err != nil {
			return false, errorOutcome(verify.StatusPermerror, err), false
		}
		return false, outcome{}, true
	}
	for _, a := range addrs {
		if c.inNetwork(a, d.cidr4, d.cidr6) {
			return true, outcome{}, true
		}
	}
	return false, outcome{}, true
}

// matchMX is the mx mechanism (§5.4): the addresses of each exchanger,
// looked up in the client's family, never the target's own address when it
// has no MX (§5.4). More than 10 MX records is a permerror (§4.6.4).
func (c *checker) matchMX(d *directive, name string) (bool, outcome, bool) {
	mxs, _, err := c.r.LookupMX(c.ctx, name)
	if err != nil {
		if !isVoid(err) {
			return false, c.dnsOutcome("MX", name, err), false
		}
		if err := c.countVoid(d.text); err != nil {
			return false, errorOutcome(verify.StatusPermerror, err), false
		}
		return false, outcome{}, true
	}
	if len(mxs) > maxMXNames {
		return false, errorOutcome(verify.StatusPermerror, fmt.Errorf("%w: %s has %d", ErrTooManyMX, name, len(mxs))), false
	}
	for _, mx := range mxs {
		host, ok := targetName(mx.Host)
		if !ok {
			continue // null MX (RFC 7505) or a name no query can be made for
		}
		if err := c.ctx.Err(); err != nil {
			return false, c.dnsOutcome("lookup", host, err), false
		}
		addrs, qtype, err := c.lookupAddrs(host)
		if err != nil {
			if isVoid(err) {
				continue // §5: as if answered with no records
			}
			return false, c.dnsOutcome(qtype, host, err), false
		}
		for _, a := range addrs {
			if c.inNetwork(a, d.cidr4, d.cidr6) {
				return true, outcome{}, true
			}
		}
	}
	return false, outcome{}, true
}

// matchExists is the exists mechanism (§5.7): an A query, whatever the
// client's family, that matches when it returns any record.
func (c *checker) matchExists(d *directive, name string) (bool, outcome, bool) {
	addrs, _, err := c.r.LookupA(c.ctx, name)
	if err != nil {
		if !isVoid(err) {
			return false, c.dnsOutcome("A", name, err), false
		}
		if err := c.countVoid(d.text); err != nil {
			return false, errorOutcome(verify.StatusPermerror, err), false
		}
		return false, outcome{}, true
	}
	return len(addrs) > 0, outcome{}, true
}
