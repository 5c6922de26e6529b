package authres

import "strings"

// minHeaderB is the shortest header.b value RFC 6008 §4 allows.
const minHeaderB = 8

// HeaderB returns the header.b property value for a DKIM signature whose
// b= tag is b, given the b= values of all the signatures on the message
// (all may include b itself). RFC 6008 §4: the value is a prefix of b of at
// least 8 characters (all of b when shorter) that is long enough to tell
// the signature apart from every other one (all of b when b is a prefix of
// another value). A value in all equal to b is taken to be b itself: two
// signatures with the same b= cannot be told apart by any prefix. White
// space within the b= values (folding, RFC 6376 §3.5) is removed first.
func HeaderB(b string, all []string) string {
	b = stripFWS(b)
	n := min(minHeaderB, len(b))
	for _, o := range all {
		o = stripFWS(o)
		if o == b {
			continue // b itself, or an identical signature
		}
		// o must not share the prefix: take one character past the
		// common part.
		common := 0
		for common < len(b) && common < len(o) && b[common] == o[common] {
			common++
		}
		n = max(n, common+1)
	}
	return b[:min(n, len(b))]
}

func stripFWS(s string) string {
	if !strings.ContainsAny(s, " \t\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}
