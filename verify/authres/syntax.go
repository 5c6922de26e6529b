package authres

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxLen bounds every value and text written, in octets, so that a line
// stays far below the 998 octets of RFC 5322 §2.1.1.
const maxLen = 512

// tspecials of RFC 2045 §5.1.
const tspecials = `()<>@,;:\"/[]?=`

// isTokenChar reports whether c may appear in an RFC 2045 §5.1 token: any
// US-ASCII CHAR except SPACE, CTLs and tspecials.
func isTokenChar(c byte) bool {
	return c > ' ' && c < 0x7f && strings.IndexByte(tspecials, c) < 0
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isAtext: RFC 5322 §3.2.3.
func isAtext(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// isDotAtomText: RFC 5322 §3.2.3 dot-atom-text = 1*atext *("." 1*atext).
func isDotAtomText(s string) bool {
	if s == "" {
		return false
	}
	for part := range strings.SplitSeq(s, ".") {
		if part == "" {
			return false
		}
		for i := 0; i < len(part); i++ {
			if !isAtext(part[i]) {
				return false
			}
		}
	}
	return true
}

// isLDH reports whether s is Let-dig [Ldh-str] (RFC 5321 §4.1.2): letters,
// digits and hyphens, starting and ending with a letter or digit. RFC 8601
// §2.2 takes Keyword from the Ldh-str of RFC 5321; a leading hyphen, which
// that production would allow, is refused here too.
func isLDH(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

// maxKeyword bounds the Keywords written (method, result, ptype,
// property), which keeps every word of a field well under 998 octets.
const maxKeyword = 64

// isKeyword: RFC 8601 §2.2 Keyword = ldh-str, at most maxKeyword octets.
func isKeyword(s string) bool { return len(s) <= maxKeyword && isLDH(s) }

// isDomainName: RFC 6376 §3.5, which RFC 8601 §2.2 refers to:
// sub-domain 1*("." sub-domain), sub-domain = Let-dig [Ldh-str].
func isDomainName(s string) bool {
	if !strings.Contains(s, ".") {
		return false
	}
	for l := range strings.SplitSeq(s, ".") {
		if !isLDH(l) {
			return false
		}
	}
	return true
}

// isAddrForm reports whether s is [[local-part] "@"] domain-name (RFC 8601
// §2.2 pvalue), with a dot-atom local-part.
func isAddrForm(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return isDomainName(s)
	}
	local := s[:at]
	return (local == "" || isDotAtomText(local)) && isDomainName(s[at+1:])
}

// cleanValue makes s safe to write as a value: every control character,
// invalid UTF-8 byte and non-printable character becomes "?", and s is cut
// to maxLen octets.
func cleanValue(s string) string {
	return truncate(clean(s, false))
}

// cleanText makes s safe to write as free text (a comment or a reason): CR,
// LF and HTAB become spaces, other unsafe characters "?", runs of spaces
// are collapsed and the ends trimmed, and the result is cut to maxLen.
func cleanText(s string) string {
	return truncate(clean(s, true))
}

func clean(s string, text bool) string {
	if alreadyClean(s, text) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := true // at start: drop leading spaces in text
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case text && (r == ' ' || r == '\t' || r == '\r' || r == '\n'):
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		case r == utf8.RuneError && n == 1, // invalid UTF-8
			r < ' ', r == 0x7f, // C0 and DEL: CR, LF, NUL, ...
			r >= 0x80 && !unicode.IsPrint(r): // C1, bidi controls, NBSP, U+2028, ...
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
		space = false
	}
	out := b.String()
	if text {
		out = strings.TrimRight(out, " ")
	}
	return out
}

// alreadyClean reports whether clean(s, text) is s: printable ASCII and,
// in text, single spaces only between words. It spares the copy for the
// usual value (a domain, an address, a reason in plain words).
func alreadyClean(s string, text bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' && text {
			if i == 0 || i == len(s)-1 || s[i-1] == ' ' {
				return false
			}
			continue
		}
		if c < ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// truncate cuts s to at most maxLen octets at a character boundary,
// marking the cut with "...". The result is unchanged by a second call.
func truncate(s string) string {
	if len(s) <= maxLen {
		return s
	}
	cut := maxLen - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimRight(s[:cut], " ") + "..."
}

// quote returns s as an RFC 2045 quoted-string (appendQuoted).
func quote(s string) string { return string(appendQuoted(nil, s)) }

// appendQuoted appends s as an RFC 2045 quoted-string (RFC 822 §3.3
// quoted-pair for '"' and '\'). s must already be clean.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

// keptValue is what is written of a value: cleanValue(s), cut further so
// that it stays within maxLen octets once quoted-pairs are added.
func keptValue(s string) string { return cutEscaped(cleanValue(s), `"\`) }

// keptText is what is written of a comment's text: cleanText(s), cut
// further so that it stays within maxLen octets once escaped.
func keptText(s string) string { return cutEscaped(cleanText(s), `()\`) }

// cutEscaped returns s if s, with a backslash before every byte in
// special, fits in maxLen octets; otherwise the longest prefix of s (at a
// character boundary) that fits with "..." appended. The result is
// unchanged by a second call.
func cutEscaped(s, special string) string {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(special, s[i]) >= 0 {
			n++
		}
	}
	if n <= maxLen {
		return s
	}
	n = 0
	cut := 0
	for i, r := range s {
		w := utf8.RuneLen(r)
		if w < 0 {
			w = 1
		}
		if r < utf8.RuneSelf && strings.IndexByte(special, byte(r)) >= 0 {
			w++
		}
		if n+w > maxLen-3 {
			break
		}
		n += w
		cut = i + utf8.RuneLen(r)
	}
	return s[:cut] + "..."
}

// appendValue appends s as an RFC 2045 value: token, else quoted-string.
func appendValue(dst []byte, s string) []byte {
	s = keptValue(s)
	if isToken(s) {
		return append(dst, s...)
	}
	return appendQuoted(dst, s)
}

// appendPValue appends s as an RFC 8601 §2.2 pvalue: token, the address
// form, else quoted-string.
func appendPValue(dst []byte, s string) []byte {
	s = keptValue(s)
	if isToken(s) || isAddrForm(s) {
		return append(dst, s...)
	}
	return appendQuoted(dst, s)
}

// comment adds text as an RFC 5322 §3.2.2 comment, with '(', ')' and '\'
// as quoted-pairs, split at its spaces into the words between which the
// folder may fold (FWS is allowed anywhere between ctext). Empty text adds
// nothing.
func (w *words) comment(text string) {
	text = keptText(text) // single spaces between words, none at the ends
	if text == "" {
		return
	}
	w.b = append(w.b, '(')
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case ' ':
			w.mark()
			continue
		case '(', ')', '\\':
			w.b = append(w.b, '\\')
		}
		w.b = append(w.b, text[i])
	}
	w.b = append(w.b, ')')
	w.mark()
}
