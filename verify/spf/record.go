package spf

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/authmilter/authmilter/verify"
)

// This file selects (RFC 7208 §4.5) and parses (§4.6, §12) SPF records.

// mechKind names a mechanism (§5).
type mechKind uint8

const (
	mechAll mechKind = iota + 1
	mechInclude
	mechA
	mechMX
	mechPTR
	mechIP4
	mechIP6
	mechExists
)

var mechNames = map[string]mechKind{
	"all": mechAll, "include": mechInclude, "a": mechA, "mx": mechMX,
	"ptr": mechPTR, "ip4": mechIP4, "ip6": mechIP6, "exists": mechExists,
}

// directive is one parsed mechanism with its qualifier.
type directive struct {
	text   string        // as written, with its qualifier if any
	result verify.Status // the result when it matches (§4.6.2)
	kind   mechKind
	// domain is the domain-spec; nil means <domain> (a, mx, ptr).
	domain macroString
	// prefix is the network of ip4 and ip6.
	prefix netip.Prefix
	// cidr4 and cidr6 are the prefix lengths of a and mx (dual-cidr-length).
	cidr4, cidr6 int
}

// modifier is a redirect= or exp= modifier (§6).
type modifier struct {
	text   string
	domain macroString
}

// record is a parsed SPF record.
type record struct {
	directives []directive
	redirect   *modifier
	exp        *modifier
}

// isSPFRecord reports whether txt is an SPF version 1 record: it starts
// with "v=spf1", compared without regard to case, followed by a space or
// its end (§4.5).
func isSPFRecord(txt string) bool {
	const version = "v=spf1"
	return len(txt) >= len(version) && strings.EqualFold(txt[:len(version)], version) &&
		(len(txt) == len(version) || txt[len(version)] == ' ')
}

// parseRecord parses a whole SPF record, which must satisfy isSPFRecord.
// Every term is checked before any is evaluated, so that a syntax error
// anywhere gives permerror (§4.6). Every error wraps ErrSyntax.
func parseRecord(txt string) (*record, error) {
	if !isSPFRecord(txt) {
		return nil, fmt.Errorf("%w: not an SPF version 1 record", ErrSyntax)
	}
	rec := &record{directives: make([]directive, 0, min(strings.Count(txt, " "), 64))}
	// record = version terms *SP; terms = *( 1*SP ( directive / modifier ) ).
	// Only SP separates terms (§4.6.1): any other octet is part of a term,
	// where the grammar rejects it.
	rest := txt[len("v=spf1"):]
	for rest != "" {
		if rest[0] == ' ' {
			rest = rest[1:]
			continue
		}
		end := strings.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		term := rest[:end]
		rest = rest[end:]
		if err := rec.parseTerm(term); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

// parseTerm parses one directive or modifier and adds it to rec.
func (rec *record) parseTerm(term string) error {
	body := term
	qualified := false
	result := verify.StatusPass // §4.6.2: the default qualifier is "+"
	switch body[0] {
	case '+':
		qualified = true
	case '-':
		result, qualified = verify.StatusFail, true
	case '~':
		result, qualified = verify.StatusSoftfail, true
	case '?':
		result, qualified = verify.StatusNeutral, true
	}
	if qualified {
		body = body[1:]
	}
	// name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ); mechanism names
	// are a subset.
	n := 0
	for n < len(body) && (isAlpha(body[n]) || body[n] >= '0' && body[n] <= '9' ||
		body[n] == '-' || body[n] == '_' || body[n] == '.') {
		n++
	}
	name, args := strings.ToLower(body[:n]), body[n:]
	if !qualified && strings.HasPrefix(args, "=") {
		return rec.parseModifier(term, name, args[1:])
	}
	kind, ok := mechNames[name]
	if !ok {
		return fmt.Errorf("%w: unknown mechanism %q", ErrSyntax, term)
	}
	d := directive{text: term, result: result, kind: kind, cidr4: 32, cidr6: 128}
	var err error
	switch kind {
	case mechAll:
		// all = "all"
		if args != "" {
			err = fmt.Errorf("%w: %q: all takes no argument", ErrSyntax, term)
		}
	case mechInclude, mechExists:
		// include = "include" ":" domain-spec; exists likewise.
		if !strings.HasPrefix(args, ":") {
			err = fmt.Errorf("%w: %q: %s needs \":\" and a domain-spec", ErrSyntax, term, name)
			break
		}
		d.domain, err = parseDomainSpec(args[1:])
	case mechA, mechMX:
		// a = "a" [ ":" domain-spec ] [ dual-cidr-length ]
		spec, cidr := splitDualCIDR(args)
		if d.cidr4, d.cidr6, err = parseDualCIDR(cidr); err != nil {
			break
		}
		if spec != "" {
			if !strings.HasPrefix(spec, ":") {
				err = fmt.Errorf("%w: %q: unexpected %q", ErrSyntax, term, spec)
				break
			}
			d.domain, err = parseDomainSpec(spec[1:])
		}
	case mechPTR:
		// ptr = "ptr" [ ":" domain-spec ]
		if args != "" {
			if !strings.HasPrefix(args, ":") {
				err = fmt.Errorf("%w: %q: unexpected %q", ErrSyntax, term, args)
				break
			}
			d.domain, err = parseDomainSpec(args[1:])
		}
	case mechIP4, mechIP6:
		d.prefix, err = parseIPNetwork(kind, args)
	}
	if err != nil {
		return fmt.Errorf("%w (in %q)", err, term)
	}
	rec.directives = append(rec.directives, d)
	return nil
}

// parseModifier parses name=value.
func (rec *record) parseModifier(term, name, value string) error {
	if name == "" || !isAlpha(name[0]) {
		return fmt.Errorf("%w: invalid modifier name in %q", ErrSyntax, term)
	}
	switch name {
	case "redirect", "exp":
		// redirect = "redirect" "=" domain-spec; explanation likewise. The
		// known names are not swallowed by unknown-modifier (suite note on
		// §6.1/2), and each may appear once (§6).
		ms, err := parseDomainSpec(value)
		if err != nil {
			return fmt.Errorf("%w (in %q)", err, term)
		}
		m := &modifier{text: term, domain: ms}
		dst := &rec.redirect
		if name == "exp" {
			dst = &rec.exp
		}
		if *dst != nil {
			return fmt.Errorf("%w: %s= appears more than once", ErrSyntax, name)
		}
		*dst = m
	default:
		// unknown-modifier = name "=" macro-string: ignored (§6), but its
		// macro-string must be valid (appendix A).
		if _, _, err := parseMacroString(value, modeModifier); err != nil {
			return fmt.Errorf("%w (in %q)", err, term)
		}
	}
	return nil
}

// splitDualCIDR splits the arguments of a or mx into the ":" domain-spec
// part and the dual-cidr-length suffix: an optional "/" 1*DIGIT followed by
// an optional "//" 1*DIGIT at the very end. A domain-spec may contain "/"
// itself, but its domain-end cannot end in "/" digits.
func splitDualCIDR(args string) (spec, cidr string) {
	end := len(args)
	if i := trailingSlashDigits(args[:end]); i >= 0 && i > 0 && args[i-1] == '/' {
		end = i - 1 // "//" ip6-cidr-length
	}
	if i := trailingSlashDigits(args[:end]); i >= 0 {
		end = i
	}
	return args[:end], args[end:]
}

// trailingSlashDigits returns the index of the "/" of a trailing
// "/" 1*DIGIT in s, or -1.
func trailingSlashDigits(s string) int {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i == len(s) || i == 0 || s[i-1] != '/' {
		return -1
	}
	return i - 1
}

// parseDualCIDR parses dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ].
func parseDualCIDR(s string) (cidr4, cidr6 int, err error) {
	cidr4, cidr6 = 32, 128
	if s == "" {
		return cidr4, cidr6, nil
	}
	v4, v6, dual := s, "", false
	if i := strings.Index(s, "//"); i >= 0 {
		v4, v6, dual = s[:i], s[i+2:], true
	}
	if v4 != "" {
		if cidr4, err = parseCIDR(strings.TrimPrefix(v4, "/"), 32); err != nil {
			return 0, 0, err
		}
	}
	if dual {
		if cidr6, err = parseCIDR(v6, 128); err != nil {
			return 0, 0, err
		}
	}
	return cidr4, cidr6, nil
}

// parseCIDR parses the digits of a prefix length: "0" or a number without
// a leading zero (§5.6: ip4-cidr-length = "/" ("0" / %x31-39 0*1DIGIT)),
// at most max.
func parseCIDR(s string, max int) (int, error) {
	if s == "" || len(s) > 3 || len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%w: invalid prefix length %q", ErrSyntax, s)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: invalid prefix length %q", ErrSyntax, s)
		}
		n = n*10 + int(s[i]-'0')
	}
	if n > max {
		return 0, fmt.Errorf("%w: prefix length %d over %d", ErrSyntax, n, max)
	}
	return n, nil
}

// parseIPNetwork parses the arguments of ip4 and ip6:
//
//	ip4 = "ip4" ":" ip4-network [ ip4-cidr-length ]
//	ip6 = "ip6" ":" ip6-network [ ip6-cidr-length ]
func parseIPNetwork(kind mechKind, args string) (netip.Prefix, error) {
	if !strings.HasPrefix(args, ":") {
		return netip.Prefix{}, fmt.Errorf("%w: missing \":\" and network", ErrSyntax)
	}
	args = args[1:]
	bits := 32
	if kind == mechIP6 {
		bits = 128
	}
	if i := strings.IndexByte(args, '/'); i >= 0 {
		n, err := parseCIDR(args[i+1:], bits)
		if err != nil {
			return netip.Prefix{}, err
		}
		args, bits = args[:i], n
	}
	// netip rejects IPv4 octets with leading zeros, as qnum does (§5.6).
	addr, err := netip.ParseAddr(args)
	if err != nil || addr.Zone() != "" || (kind == mechIP4) != addr.Is4() {
		return netip.Prefix{}, fmt.Errorf("%w: invalid network %q", ErrSyntax, args)
	}
	return netip.PrefixFrom(addr, bits).Masked(), nil
}
