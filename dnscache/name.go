package dnscache

// Limits on names, RFC 1035 §2.3.4: 63 octets per label and 255 octets on
// the wire, which is 253 in text without the trailing dot (the wire form
// adds one length octet before the first label and the root label).
const (
	maxLabelLen = 63
	maxNameLen  = 253
)

// normalize checks name and returns it in the form used inside this
// package: lower-case ASCII, without the trailing dot.
//
// A name that cannot be a DNS name (empty, an empty label, a label over 63
// octets, over 253 octets, or a byte that is not printable ASCII or is a
// backslash) gives an NXDOMAIN error without any query being sent: such a
// name cannot exist, and RFC 7208 §4.3 wants check_host() to treat a
// malformed domain as non-existent. Internationalised names must be turned
// into A-labels before the lookup.
func normalize(name string) (string, error) {
	n := name
	if len(n) > 0 && n[len(n)-1] == '.' {
		n = n[:len(n)-1]
	}
	if reason := badName(n); reason != "" {
		return "", NewError(ErrNXDomain, name, "", "invalid domain name: "+reason, false)
	}
	return lowerASCII(n), nil
}

// badName returns why n (without trailing dot) is not a valid name, or "".
func badName(n string) string {
	if n == "" {
		return "empty name"
	}
	if len(n) > maxNameLen {
		return "longer than 253 octets"
	}
	label := 0
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c == '.' {
			if label == 0 {
				return "empty label"
			}
			label = 0
			continue
		}
		// Printable ASCII only, and no backslash: the name is handed to
		// miekg/dns in presentation form, where a backslash starts an
		// escape.
		if c <= ' ' || c >= 0x7f || c == '\\' {
			return "byte not allowed in a name"
		}
		label++
		if label > maxLabelLen {
			return "label longer than 63 octets"
		}
	}
	if label == 0 {
		return "empty label"
	}
	return ""
}

// lowerASCII lower-cases the ASCII letters of s, without allocating when
// there are none in upper case (RFC 4343: DNS names compare without case).
func lowerASCII(s string) string {
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

// canonical returns a name taken from a DNS message or a zone file in the
// internal form: lower-case, without the trailing dot (the root is "").
func canonical(name string) string {
	if len(name) > 0 && name[len(name)-1] == '.' {
		name = name[:len(name)-1]
	}
	return lowerASCII(name)
}

// isAtOrUnder reports whether name is origin or a name below it; both are
// canonical. The root ("") contains every name.
func isAtOrUnder(name, origin string) bool {
	if origin == "" || name == origin {
		return true
	}
	return len(name) > len(origin) && name[len(name)-len(origin)-1] == '.' &&
		name[len(name)-len(origin):] == origin
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
