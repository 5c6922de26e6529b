package domain

import (
	"strings"
)

// QueryName checks a name a DNS query is about to be made for and returns
// it in the form lookups use: lower-case ASCII without the trailing dot.
//
// It is looser than Parse for ASCII names: RFC 7208 §7.3 macros put local
// parts into names ("%{l}._spf.example.com"), and the DNS itself allows
// any octet in a label (RFC 2181 §11), so any printable ASCII character
// other than a backslash (which would start an escape in the presentation
// form handed to the DNS library) is allowed. The length rules are the
// same. A name with a non-ASCII character is parsed with Parse and its
// A-label form returned: a U-label is looked up by its A-label (RFC 8616).
func QueryName(s string) (string, error) {
	n := s
	if strings.HasSuffix(n, ".") && n != "." {
		n = n[:len(n)-1]
	}
	if !isASCII(n) {
		d, err := Parse(s)
		if err != nil {
			return "", err
		}
		return d.ASCII, nil
	}
	if n == "" || n == "." {
		return "", invalid(s, "empty name")
	}
	if len(n) > MaxNameLen {
		return "", invalid(s, "longer than %d octets (%d)", MaxNameLen, len(n))
	}
	start := 0
	for i := 0; i <= len(n); i++ {
		if i < len(n) && n[i] != '.' {
			if c := n[i]; c <= ' ' || c >= 0x7f || c == '\\' {
				return "", invalid(s, "label %q contains %q", labelAt(n, start), rune(c))
			}
			continue
		}
		switch l := i - start; {
		case l == 0:
			return "", invalid(s, "empty label")
		case l > MaxLabelLen:
			return "", invalid(s, "label %q is longer than %d octets", n[start:i], MaxLabelLen)
		}
		start = i + 1
	}
	return LowerASCII(n), nil
}
