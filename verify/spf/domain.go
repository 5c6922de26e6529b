package spf

import (
	"errors"
	"fmt"
	"strings"

	"github.com/authmilter/authmilter/domain"
)

// This file checks domain names: the domain-spec grammar of a record
// (RFC 7208 §7.1), the <domain> given to check_host() (§4.3), and target
// names after macro expansion (§7.3, §4.8).

// maxNameLen is the longest domain name in text form without the trailing
// dot (RFC 1035 §2.3.4, RFC 7208 §7.3), maxLabelLen the longest label.
const (
	maxNameLen  = domain.MaxNameLen
	maxLabelLen = domain.MaxLabelLen
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
// (§4.3): a multi-label domain name (domain.Parse: U-labels, A-labels or
// plain ASCII labels of letters, digits, hyphens and underscores; at most
// 63 octets a label and 253 in all), not ending in an all-numeric label (an
// address, not a name), and not an address literal. RFC 8616 §4: a name
// in U-labels is checked under its A-labels, the form the check and its
// macros use.
func checkDomain(name string) (domain.Name, error) {
	d, err := domain.Parse(name)
	if err != nil {
		if de, ok := errors.AsType[*domain.Error](err); ok {
			return domain.Name{}, fmt.Errorf("%w: %q: %s", ErrInvalidDomain, name, de.Reason)
		}
		return domain.Name{}, fmt.Errorf("%w: %w", ErrInvalidDomain, err)
	}
	if d.Labels() < 2 {
		return domain.Name{}, fmt.Errorf("%w: %q is not a multi-label domain name", ErrInvalidDomain, name)
	}
	if top := d.LastLabels(1).ASCII; strings.Trim(top, "0123456789") == "" {
		return domain.Name{}, fmt.Errorf("%w: %q ends in a numeric label", ErrInvalidDomain, name)
	}
	return d, nil
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

// isSubdomain reports whether name equals parent or is a subdomain of it,
// ignoring case and trailing dots (§5.5). Both come from the DNS or from a
// record, so they are ASCII.
func isSubdomain(name, parent string) bool {
	return domain.IsSameOrUnder(strings.ToLower(strings.TrimSuffix(name, ".")), strings.ToLower(strings.TrimSuffix(parent, ".")))
}
