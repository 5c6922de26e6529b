package dmarc

import (
	"fmt"
	"strings"
)

// normalizeDomain returns domain in the form every comparison and query in
// this package uses: A-labels (RFC 9989 §5.3.1), lower case (RFC 9989 §4.4:
// comparisons are case-insensitive, RFC 4343), without the trailing dot.
//
// It is tolerant of what real mail carries (underscores, a trailing dot,
// ideographic full stops between U-labels) and refuses what cannot be a
// domain: empty labels, address literals, spaces and other bytes outside
// letters, digits, hyphen and underscore, labels over 63 octets, names over
// 253 (RFC 1035 §2.3.4).
func normalizeDomain(domain string) (string, error) {
	d := strings.TrimSpace(domain)
	if strings.HasPrefix(d, "[") {
		return "", fmt.Errorf("%q: address literal, not a domain", domain)
	}
	// UTS #46 §2.3 label separators: the ideographic and full-width stops.
	if !isASCII(d) {
		d = strings.NewReplacer("\u3002", ".", "\uff0e", ".", "\uff61", ".").Replace(d)
	}
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return "", fmt.Errorf("%q: empty domain", domain)
	}
	ascii := isASCII(d)
	if ascii && isLowerLDH(d) {
		// Fast path: already normalised; only the label checks remain.
		if err := checkLabels(d); err != nil {
			return "", fmt.Errorf("%q: %w", domain, err)
		}
		return d, nil
	}
	labels := strings.Split(d, ".")
	for i, l := range labels {
		if isASCII(l) {
			if !validASCIILabel(l) {
				return "", fmt.Errorf("%q: label %q has a character not allowed in a domain", domain, l)
			}
			labels[i] = strings.ToLower(l)
			continue
		}
		a, err := toALabel(l)
		if err != nil {
			return "", fmt.Errorf("%q: label %q: %w", domain, l, err)
		}
		labels[i] = a
	}
	d = strings.Join(labels, ".")
	if err := checkLabels(d); err != nil {
		return "", fmt.Errorf("%q: %w", domain, err)
	}
	return d, nil
}

// checkLabels enforces non-empty labels of at most 63 octets and a name of
// at most 253 octets, and the allowed characters.
func checkLabels(d string) error {
	if len(d) > 253 {
		return fmt.Errorf("longer than 253 octets")
	}
	for l := range strings.SplitSeq(d, ".") {
		if l == "" {
			return fmt.Errorf("empty label")
		}
		if len(l) > 63 {
			return fmt.Errorf("label longer than 63 octets")
		}
		if !validASCIILabel(l) {
			return fmt.Errorf("label %q has a character not allowed in a domain", l)
		}
	}
	return nil
}

func validASCIILabel(l string) bool {
	for i := 0; i < len(l); i++ {
		if c := l[i]; !isLDHByte(c) && c != '_' {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// isLowerLDH reports whether s has only lower-case letters, digits, hyphens,
// underscores and dots.
func isLowerLDH(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// labelCount returns the number of labels of a normalised domain.
func labelCount(d string) int { return strings.Count(d, ".") + 1 }

// lastLabels returns the right-most n labels of a normalised domain.
func lastLabels(d string, n int) string {
	i := len(d)
	for ; n > 0; n-- {
		j := strings.LastIndexByte(d[:i], '.')
		if j < 0 {
			return d
		}
		i = j
	}
	return d[i+1:]
}

// isSubdomain reports whether d is a strict subdomain of parent.
func isSubdomain(d, parent string) bool {
	return len(d) > len(parent) && strings.HasSuffix(d, parent) && d[len(d)-len(parent)-1] == '.'
}
