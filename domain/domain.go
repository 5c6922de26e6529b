package domain

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits of RFC 1035 §2.3.4: 63 octets per label and 255 octets on the
// wire, which is 253 in text without the trailing dot (the wire form adds a
// length octet before the first label and the root label).
const (
	MaxLabelLen = 63
	MaxNameLen  = 253
)

// ErrInvalid is wrapped by every error of Parse and QueryName. The message
// says what is wrong and where: the label, and the offending character as
// a character (never its first byte).
var ErrInvalid = errors.New("not a valid domain name")

// Error is the error of Parse and QueryName: the input and why it is not
// a domain name. It unwraps to ErrInvalid.
type Error struct {
	Input  string // the string given
	Reason string // what is wrong and where: a label, a character
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %q: %s", ErrInvalid, e.Input, e.Reason)
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

func invalid(input, format string, args ...any) error {
	return &Error{Input: input, Reason: fmt.Sprintf(format, args...)}
}

// Name is a parsed domain name. The zero Name is no name (IsZero).
type Name struct {
	// ASCII is the A-label form: lower case, LDH labels, no trailing dot.
	// DNS lookups and comparisons use it.
	ASCII string
	// Unicode is the U-label form: each A-label decoded, in lower case as
	// UTS #46 maps it. For a name without A-labels it equals ASCII.
	Unicode string
}

// Parse parses s, a domain name in U-labels, A-labels or both, in any case,
// with or without one trailing dot. See the package documentation for
// what is accepted.
func Parse(s string) (Name, error) {
	n := s
	if strings.HasSuffix(n, ".") && n != "." {
		n = n[:len(n)-1]
	}
	if n == "" || n == "." {
		return Name{}, invalid(s, "empty name")
	}
	if isASCII(n) && !hasALabel(n) {
		// The common case: no IDNA processing, no allocation when the name
		// is already in lower case.
		if err := checkASCII(n, true); err != nil {
			return Name{}, invalid(s, "%s", err)
		}
		a := LowerASCII(n)
		return Name{ASCII: a, Unicode: a}, nil
	}
	return parseIDN(s, n)
}

// parseIDN parses a name that has a non-ASCII character or an A-label,
// through the UTS #46 Lookup profile (RFC 5891 §5.3–§5.5).
func parseIDN(orig, n string) (Name, error) {
	if !utf8.ValidString(n) {
		i := firstInvalidUTF8(n)
		return Name{}, invalid(orig, "invalid UTF-8 at byte %d", i)
	}
	a, err := idna.Lookup.ToASCII(n)
	if err != nil {
		return Name{}, invalid(orig, "%s", idnaReason(n, err))
	}
	// The mapping may have turned a full stop (U+3002 and kin) at the end
	// into a trailing dot.
	a = strings.TrimSuffix(a, ".")
	if a == "" {
		return Name{}, invalid(orig, "empty name")
	}
	// UTS #46 maps to lower case and checks the characters of U-labels;
	// the ASCII labels it passes through still need the length rules.
	if err := checkASCII(a, false); err != nil {
		return Name{}, invalid(orig, "%s", err)
	}
	u, err := idna.Lookup.ToUnicode(a)
	if err != nil {
		return Name{}, invalid(orig, "%s", idnaReason(n, err))
	}
	// RFC 5891 §5.4: an A-label must decode to a U-label that encodes back
	// to the same A-label; "xn--" labels that do not are fakes.
	if back, err := idna.Lookup.ToASCII(u); err != nil || back != a {
		return Name{}, invalid(orig, "an A-label does not round-trip through its U-label")
	}
	return Name{ASCII: a, Unicode: u}, nil
}

// idnaReason turns an error of the idna package into a reason that names
// the offending character when one character is to blame.
func idnaReason(n string, err error) string {
	for _, label := range strings.Split(n, ".") {
		for _, r := range label {
			if r < utf8.RuneSelf && (isLDH(byte(r)) || r == '_') {
				continue // an underscore gets its own reason below
			}
			if r == '\u3002' || r == '\uff0e' || r == '\uff61' {
				continue // UTS #46 §2.3 label separators
			}
			if _, e := idna.Lookup.ToASCII(string(r)); e != nil {
				return fmt.Sprintf("label %q contains %q (%U), not allowed in a domain name", label, r, r)
			}
		}
	}
	var reason string
	switch {
	case strings.Contains(n, "_"):
		reason = "an underscore is not allowed in a name with U-labels or A-labels"
	default:
		// Hyphen placement, joiners, the bidi rule, a bad A-label: the idna
		// error names the label.
		reason = strings.TrimPrefix(err.Error(), "idna: ")
	}
	return reason
}

// checkASCII checks the labels of an ASCII name without trailing dot:
// 1 to 63 octets of letters, digits, hyphens (and underscores when
// underscore is set), at most 253 octets in all.
func checkASCII(n string, underscore bool) error {
	if len(n) > MaxNameLen {
		return fmt.Errorf("longer than %d octets (%d)", MaxNameLen, len(n))
	}
	start := 0
	for i := 0; i <= len(n); i++ {
		if i < len(n) && n[i] != '.' {
			c := n[i]
			if !isLDH(c) && !(underscore && c == '_') {
				return fmt.Errorf("label %q contains %q, not allowed in a domain name", labelAt(n, start), rune(c))
			}
			continue
		}
		switch l := i - start; {
		case l == 0:
			return errors.New("empty label")
		case l > MaxLabelLen:
			return fmt.Errorf("label %q is longer than %d octets", n[start:i], MaxLabelLen)
		}
		start = i + 1
	}
	return nil
}

// labelAt returns the label of n that starts at start.
func labelAt(n string, start int) string {
	if i := strings.IndexByte(n[start:], '.'); i >= 0 {
		return n[start : start+i]
	}
	return n[start:]
}

// hasALabel reports whether an ASCII name has a label starting "xn--" in
// any case (an A-label, or a fake one).
func hasALabel(n string) bool {
	for i := 0; i+4 <= len(n); i++ {
		if (i == 0 || n[i-1] == '.') && (n[i] == 'x' || n[i] == 'X') && (n[i+1] == 'n' || n[i+1] == 'N') &&
			n[i+2] == '-' && n[i+3] == '-' {
			return true
		}
	}
	return false
}

func isLDH(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func firstInvalidUTF8(s string) int {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(s)
}

// LowerASCII lower-cases the ASCII letters of s, without allocating when
// there are none in upper case (RFC 4343: names compare without case).
// Other bytes are left as they are.
func LowerASCII(s string) string {
	i := 0
	for i < len(s) && (s[i] < 'A' || s[i] > 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// IsZero reports whether n is the zero Name.
func (n Name) IsZero() bool { return n.ASCII == "" }

// String returns the ASCII form.
func (n Name) String() string { return n.ASCII }

// IsIDN reports whether n has at least one U-label (its two forms differ).
func (n Name) IsIDN() bool { return n.ASCII != n.Unicode }

// Equal reports whether n and o are the same domain: a U-label and its
// A-label are (RFC 8616 §6), and case never matters.
func (n Name) Equal(o Name) bool { return n.ASCII == o.ASCII }

// IsSameOrUnder reports whether n is parent or a subdomain of it, label by
// label ("bexample.com" is not under "example.com"). Nothing is under the
// zero Name.
func (n Name) IsSameOrUnder(parent Name) bool {
	return IsSameOrUnder(n.ASCII, parent.ASCII)
}

// IsSameOrUnder is Name.IsSameOrUnder for names already in the ASCII form
// of a Name (lower case, no trailing dot): name is parent or ends in "." +
// parent. An empty parent contains nothing.
func IsSameOrUnder(name, parent string) bool {
	if parent == "" || len(name) < len(parent) {
		return false
	}
	if len(name) == len(parent) {
		return name == parent
	}
	return name[len(name)-len(parent)-1] == '.' && name[len(name)-len(parent):] == parent
}

// Labels returns the number of labels of n.
func (n Name) Labels() int {
	if n.ASCII == "" {
		return 0
	}
	return strings.Count(n.ASCII, ".") + 1
}

// Parent returns the name one label up, and false for a single-label name
// or the zero Name.
func (n Name) Parent() (Name, bool) {
	i := strings.IndexByte(n.ASCII, '.')
	if i < 0 {
		return Name{}, false
	}
	p := Name{ASCII: n.ASCII[i+1:], Unicode: n.ASCII[i+1:]}
	if j := strings.IndexByte(n.Unicode, '.'); j >= 0 {
		p.Unicode = n.Unicode[j+1:]
	}
	return p, true
}

// LastLabels returns the right-most k labels of n (n itself when it has k
// or fewer).
func (n Name) LastLabels(k int) Name {
	return Name{ASCII: lastLabels(n.ASCII, k), Unicode: lastLabels(n.Unicode, k)}
}

func lastLabels(d string, k int) string {
	i := len(d)
	for ; k > 0; k-- {
		j := strings.LastIndexByte(d[:i], '.')
		if j < 0 {
			return d
		}
		i = j
	}
	return d[i+1:]
}
