package dnscache

import (
	"errors"

	"github.com/authmilter/authmilter/domain"
)

// normalize checks name and returns it in the form used inside this
// package: lower-case ASCII, without the trailing dot (domain.QueryName).
//
// A name that cannot be a DNS name (empty, an empty label, a label over 63
// octets, over 253 octets, or a byte that is not printable ASCII or is a
// backslash) gives an NXDOMAIN error without any query being sent: such a
// name cannot exist, and RFC 7208 §4.3 wants check_host() to treat a
// malformed domain as non-existent. A name in U-labels is looked up by its
// A-labels (RFC 8616), as domain.QueryName converts it.
func normalize(name string) (string, error) {
	n, err := domain.QueryName(name)
	if err != nil {
		reason := err.Error()
		if de, ok := errors.AsType[*domain.Error](err); ok {
			reason = de.Reason
		}
		return "", NewError(ErrNXDomain, name, "", "invalid domain name: "+reason, false)
	}
	return n, nil
}

// canonical returns a name taken from a DNS message or a zone file in the
// internal form: lower-case, without the trailing dot (the root is "").
func canonical(name string) string {
	if len(name) > 0 && name[len(name)-1] == '.' {
		name = name[:len(name)-1]
	}
	return domain.LowerASCII(name)
}

// isAtOrUnder reports whether name is origin or a name below it; both are
// canonical. The root ("") contains every name.
func isAtOrUnder(name, origin string) bool {
	return origin == "" || domain.IsSameOrUnder(name, origin)
}

// parent returns the name one label up from n ("" for a top-level name).
func parent(n string) string {
	for i := 0; i < len(n); i++ {
		if n[i] == '\\' {
			i++ // an escaped character, possibly a dot
			continue
		}
		if n[i] == '.' {
			return n[i+1:]
		}
	}
	return ""
}
