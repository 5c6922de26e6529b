package spf

import (
	"strings"
)

// This file validates the client's reverse names (RFC 7208 §5.5) for the
// ptr mechanism and the %{p} macro (§7.3).

// maxPTRNames is the most PTR names looked at; the rest are ignored
// (§4.6.4: the sender does not control them, so this is no error).
const maxPTRNames = 10

// ptrState remembers, for one evaluation, the client's PTR names and which
// of them have been validated, so that several ptr terms and %{p} macros
// query each name once.
type ptrState struct {
	looked bool
	names  []string          // at most maxPTRNames, without trailing dots
	valid  map[string]bool   // validation by lower-case name
	pname  map[string]string // %{p} by <domain>
}

// ptrNames returns the first 10 names of the client's PTR records. A DNS
// error, including NXDOMAIN, leaves none: §5.5 makes the ptr mechanism not
// match and §7.3 makes %{p} "unknown".
func (c *checker) ptrNames() []string {
	if c.ptr.looked {
		return c.ptr.names
	}
	c.ptr.looked = true
	if c.ctx.Err() != nil {
		return nil
	}
	names, _, err := c.r.LookupPTR(c.ctx, c.ip)
	if err != nil {
		return nil
	}
	for _, n := range names {
		if len(c.ptr.names) == maxPTRNames {
			break
		}
		if n, ok := targetName(n); ok {
			c.ptr.names = append(c.ptr.names, n)
		}
	}
	return c.ptr.names
}

// validates reports whether name has an address record (A for an IPv4
// client, AAAA for IPv6) equal to the client's address. A DNS error skips
// the name (§5.5).
func (c *checker) validates(name string) bool {
	key := strings.ToLower(name)
	if v, ok := c.ptr.valid[key]; ok {
		return v
	}
	ok := false
	if c.ctx.Err() == nil {
		if addrs, _, err := c.lookupAddrs(name); err == nil {
			for _, a := range addrs {
				if a.Unmap() == c.ip {
					ok = true
					break
				}
			}
		}
	}
	if c.ptr.valid == nil {
		c.ptr.valid = make(map[string]bool)
	}
	c.ptr.valid[key] = ok
	return ok
}

// matchPTR is the ptr mechanism (§5.5): some validated name of the client
// is target or a subdomain of it. Names that could not match are not
// validated, which gives the same result with fewer queries.
func (c *checker) matchPTR(target string) bool {
	for _, n := range c.ptrNames() {
		if isSubdomain(n, target) && c.validates(n) {
			return true
		}
	}
	return false
}

// validatedName is the %{p} macro at <domain> (§7.3): a validated name of
// the client, preferring domain itself, then a subdomain of it, then any;
// "unknown" when there is none.
func (c *checker) validatedName(domain string) string {
	if p, ok := c.ptr.pname[domain]; ok {
		return p
	}
	names := c.ptrNames()
	p := ""
	for _, prefer := range []func(string) bool{
		func(n string) bool { return strings.EqualFold(n, domain) },
		func(n string) bool { return isSubdomain(n, domain) },
		func(string) bool { return true },
	} {
		for _, n := range names {
			if prefer(n) && c.validates(n) {
				p = n
				break
			}
		}
		if p != "" {
			break
		}
	}
	if p == "" {
		p = "unknown"
	}
	if c.ptr.pname == nil {
		c.ptr.pname = make(map[string]string)
	}
	c.ptr.pname[domain] = p
	return p
}
