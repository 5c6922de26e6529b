package spf

import (
	"fmt"
	"strings"
)

// This file checks domain names: the domain-spec grammar of a record
// (RFC 7208 §7.1), the <domain> given to check_host() (§4.3), and target
// names after macro expansion (§7.3, §4.8).

// maxNameLen is the longest domain name in text form without the trailing
// dot (RFC 1035 §2.3.4, RFC 7208 §7.3), maxLabelLen the longest label.
const (
	maxNameLen  = 253
	maxLabelLen = 63
)

// parseDomainSpec parses s as a domain-spec (§7.1):
//
//	domain-spec = macro-string domain-end
//	domain-end  = ( "." toplabel [ "." ] ) / macro-expand
func parseDomainSpec(s string) (macroString, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty domain-spec", ErrSyntax)
	}
	ms, tail, err := parseMacroString(s, modeDomain)
	if err != nil {
		return nil, err
	}
	if tail == "" {
		return ms, nil // ends with a macro-expand
	}
	tail = strings.TrimSuffix(tail, ".")
	dot := strings.LastIndexByte(tail, '.')
	if dot < 0 || !isToplabel(tail[dot+1:]) {
		return nil, fmt.Errorf("%w: domain-spec %q does not end in a valid top label", ErrSyntax, s)
	}
	return ms, nil
}

// isToplabel reports whether s matches
//
//	toplabel = ( *alphanum ALPHA *alphanum ) /
//	           ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
//
// that is: letters, digits and hyphens, neither first nor last a hyphen,
// and not all digits (§7.1).
func isToplabel(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	allDigits := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(c):
			allDigits = false
		case c >= '0' && c <= '9':
		case c == '-':
			allDigits = false // the second form: 1*alphanum "-" ... alphanum
		default:
			return false
		}
	}
	return !allDigits
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// checkDomain checks the <domain> given to check_host() by its caller
// (§4.3): a multi-label domain name of at most 253 octets whose labels are
// 1 to 63 letters, digits, hyphens or underscores, not ending in an
// all-numeric label (an address, not a name), and not an address literal.
// It returns the name without a trailing dot.
func checkDomain(name string) (string, error) {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > maxNameLen {
		return "", fmt.Errorf("%w: %q", ErrInvalidDomain, name)
	}
	labels := 0
	allDigits := true
	for label := range strings.SplitSeq(name, ".") {
		labels++
		if label == "" || len(label) > maxLabelLen {
			return "", fmt.Errorf("%w: %q has an empty or over-long label", ErrInvalidDomain, name)
		}
		allDigits = true
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= '0' && c <= '9':
			case isAlpha(c), c == '-', c == '_':
				allDigits = false
			default:
				return "", fmt.Errorf("%w: %q contains %q", ErrInvalidDomain, name, c)
			}
		}
	}
	if labels < 2 {
		return "", fmt.Errorf("%w: %q is not a multi-label domain name", ErrInvalidDomain, name)
	}
	if allDigits {
		return "", fmt.Errorf("%w: %q ends in a numeric label", ErrInvalidDomain, name)
	}
	return name, nil
}

// targetName turns an expanded domain-spec into the name to query: the
// trailing dot removed, then, when longer than 253 octets, labels removed
// from the left until it fits (§7.3). It reports false when the result is
// not a name a DNS query can be made for: empty, with an empty label or
// with a label over 63 octets. RFC 7208 leaves this case undefined; such a
// name is treated as non-existent (§4.3 and §5 by analogy).
func targetName(s string) (string, bool) {
	s = strings.TrimSuffix(s, ".")
	for len(s) > maxNameLen {
		dot := strings.IndexByte(s, '.')
		if dot < 0 {
			return "", false
		}
		s = s[dot+1:]
	}
	if s == "" {
		return "", false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if n := i - start; n == 0 || n > maxLabelLen {
				return "", false
			}
			start = i + 1
		}
	}
	return s, true
}

// isSubdomain reports whether name equals parent or ends in "."+parent,
// ignoring case and trailing dots (§5.5).
func isSubdomain(name, parent string) bool {
	name = strings.TrimSuffix(name, ".")
	parent = strings.TrimSuffix(parent, ".")
	if len(name) < len(parent) {
		return false
	}
	if len(name) == len(parent) {
		return strings.EqualFold(name, parent)
	}
	return name[len(name)-len(parent)-1] == '.' && strings.EqualFold(name[len(name)-len(parent):], parent)
}
