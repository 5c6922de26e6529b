package spf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// This file parses and expands macro-strings (RFC 7208 §7).

// macroMode selects what a macro-string may contain.
type macroMode uint8

const (
	// modeDomain is a domain-spec: the letters c, r and t are allowed only
	// in exp text (§7.3), and there is no SP.
	modeDomain macroMode = iota
	// modeModifier is the value of an unknown modifier: any macro-letter
	// of the grammar (§7.1), no SP. It is checked, never expanded.
	modeModifier
	// modeExplain is an explain-string (§6.2): any macro-letter, and SP.
	modeExplain
)

// maxExpansion bounds the length of one expansion. A domain name is cut to
// 253 octets after expansion (§7.3) and an explanation is a line of text;
// nothing legitimate comes near this.
const maxExpansion = 8192

// maxTransformDigits caps the DIGIT transformer: a value larger than the
// number of parts means all of them (§7.3), so any cap above the possible
// number of parts in maxExpansion octets is exact.
const maxTransformDigits = maxExpansion

// macroPart is a literal run (letter == 0) or one macro-expand.
type macroPart struct {
	literal string
	letter  byte   // lower-case macro-letter
	upper   bool   // written in upper case: URL-escape the value (§7.3)
	digits  int    // keep this many right-hand parts; 0 keeps all
	reverse bool   // the "r" transformer
	delims  string // delimiters to split on; "" means "."
}

// macroString is a parsed macro-string.
type macroString []macroPart

// parseMacroString parses s as a macro-string (§7.1) in the given mode. It
// also returns the literal characters that follow the last macro-expand
// ("" when s ends with one), which the domain-end rule of a domain-spec
// needs.
func parseMacroString(s string, mode macroMode) (ms macroString, tail string, err error) {
	run := 0 // start of the current run of literal characters
	flush := func(end int) {
		if end > run {
			ms = append(ms, macroPart{literal: s[run:end]})
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' {
			// macro-literal = %x21-24 / %x26-7E; explain-string adds SP.
			if (c < 0x21 || c > 0x7e) && !(c == ' ' && mode == modeExplain) {
				return nil, "", fmt.Errorf("%w: character %s in %q", ErrSyntax, charAt(s, i), s)
			}
			i++
			continue
		}
		if i+1 >= len(s) {
			return nil, "", fmt.Errorf("%w: %% at the end of %q", ErrSyntax, s)
		}
		var p macroPart
		n := 2
		// §7.1: "%%", "%_" and "%-" stand for "%", a space and "%20".
		switch s[i+1] {
		case '%':
			p.literal = "%"
		case '_':
			p.literal = " "
		case '-':
			p.literal = "%20"
		case '{':
			if p, n, err = parseMacroExpand(s[i:], mode); err != nil {
				return nil, "", err
			}
		default:
			// §7.1: a "%" followed by anything else is a syntax error.
			return nil, "", fmt.Errorf("%w: invalid macro %q in %q", ErrSyntax, s[i:i+2], s)
		}
		flush(i)
		ms = append(ms, p)
		i += n
		run = i
	}
	flush(len(s))
	return ms, s[run:], nil
}

// parseMacroExpand parses one "%{" macro-letter transformers *delimiter "}"
// at the start of s and returns it with its length.
func parseMacroExpand(s string, mode macroMode) (macroPart, int, error) {
	bad := func(why string) (macroPart, int, error) {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			end = len(s) - 1
		}
		return macroPart{}, 0, fmt.Errorf("%w: %s in macro %q", ErrSyntax, why, s[:end+1])
	}
	i := 2 // past "%{"
	if i >= len(s) {
		return bad("unterminated macro")
	}
	var p macroPart
	letter := s[i]
	if letter >= 'A' && letter <= 'Z' {
		p.upper = true
		letter += 'a' - 'A'
	}
	switch letter {
	case 's', 'l', 'o', 'd', 'i', 'p', 'h', 'v':
	case 'c', 'r', 't':
		// §7.3: c, r and t are allowed only in exp text.
		if mode == modeDomain {
			return bad("macro letter allowed only in explanations")
		}
	default:
		return bad("unknown macro letter")
	}
	p.letter = letter
	i++
	// transformers = *DIGIT [ "r" ]
	digitStart := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if p.digits < maxTransformDigits {
			p.digits = p.digits*10 + int(s[i]-'0')
		}
		i++
	}
	if i > digitStart && p.digits == 0 {
		// §7.3: "If a DIGIT is specified, the value MUST be nonzero."
		return bad("zero DIGIT transformer")
	}
	p.digits = min(p.digits, maxTransformDigits)
	if i < len(s) && (s[i] == 'r' || s[i] == 'R') {
		p.reverse = true
		i++
	}
	delimStart := i
	for i < len(s) && strings.IndexByte(".-+,/_=", s[i]) >= 0 {
		i++
	}
	p.delims = s[delimStart:i]
	if i >= len(s) || s[i] != '}' {
		return bad("invalid transformer or delimiter")
	}
	return p, i + 1, nil
}

// macroEnv holds the values macros expand to (§7.2, §7.3).
type macroEnv struct {
	sender   string // s
	local    string // l
	origin   string // o: the domain of the sender
	domain   string // d: the current domain
	helo     string // h
	receiver string // r
	ip       netip.Addr
	now      func() time.Time
	// ptr returns the validated name of ip for %{p}; called only when the
	// macro is used, since it costs DNS queries.
	ptr func() string
}

// isLiteral reports whether ms has no macro-expand, and returns its text.
func (ms macroString) isLiteral() (string, bool) {
	switch len(ms) {
	case 0:
		return "", true
	case 1:
		if ms[0].letter == 0 {
			return ms[0].literal, true
		}
	}
	return "", false
}

// charAt describes the character at s[i] for an error message: the whole
// character when s holds UTF-8 there (never its first byte alone), else
// the byte in hex.
func charAt(s string, i int) string {
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n <= 1 {
		return fmt.Sprintf("byte %#02x", s[i])
	}
	return fmt.Sprintf("%q (%U)", r, r)
}

// uses reports whether ms has a macro-expand of one of letters.
func (ms macroString) uses(letters ...byte) bool {
	for i := range ms {
		for _, l := range letters {
			if ms[i].letter == l {
				return true
			}
		}
	}
	return false
}

// isASCII reports whether s has only ASCII octets.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// expand expands ms in env. It fails only when the result would exceed
// maxExpansion octets.
func (ms macroString) expand(env *macroEnv) (string, error) {
	if s, ok := ms.isLiteral(); ok {
		return s, nil
	}
	var b strings.Builder
	for i := range ms {
		p := &ms[i]
		if p.letter == 0 {
			b.WriteString(p.literal)
		} else {
			p.expandTo(&b, env)
		}
		if b.Len() > maxExpansion {
			return "", fmt.Errorf("%w: macro expansion longer than %d octets", ErrSyntax, maxExpansion)
		}
	}
	return b.String(), nil
}

// value returns the raw value of the macro-letter (§7.3).
func (p *macroPart) value(env *macroEnv) string {
	switch p.letter {
	case 's':
		return env.sender
	case 'l':
		return env.local
	case 'o':
		return env.origin
	case 'd':
		return env.domain
	case 'h':
		return env.helo
	case 'i':
		return dotIP(env.ip)
	case 'c':
		return env.ip.String()
	case 'v':
		if env.ip.Is4() {
			return "in-addr"
		}
		return "ip6"
	case 'p':
		if env.ptr == nil {
			return "unknown"
		}
		return env.ptr()
	case 'r':
		if env.receiver == "" {
			return "unknown"
		}
		return env.receiver
	case 't':
		now := time.Now
		if env.now != nil {
			now = env.now
		}
		return strconv.FormatInt(now().Unix(), 10)
	}
	return ""
}

// expandTo writes the transformed (§7.3) and, for an upper-case letter,
// URL-escaped value of the macro to b.
func (p *macroPart) expandTo(b *strings.Builder, env *macroEnv) {
	v := p.value(env)
	if p.digits == 0 && !p.reverse && (p.delims == "" || p.delims == ".") {
		writeMaybeEscaped(b, v, p.upper)
		return
	}
	delims := p.delims
	if delims == "" {
		delims = "."
	}
	parts := splitAny(v, delims)
	if p.reverse {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	if p.digits > 0 && p.digits < len(parts) {
		parts = parts[len(parts)-p.digits:]
	}
	for i, part := range parts {
		if i > 0 {
			b.WriteByte('.')
		}
		writeMaybeEscaped(b, part, p.upper)
	}
}

// splitAny splits s at every octet that is one of delims, keeping empty
// parts.
func splitAny(s, delims string) []string {
	parts := make([]string, 0, 8)
	start := 0
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(delims, s[i]) >= 0 {
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// writeMaybeEscaped writes s, URL-escaped when escape is set: every octet
// outside the unreserved set of RFC 3986 becomes %XX (§7.3).
func writeMaybeEscaped(b *strings.Builder, s string, escape bool) {
	if !escape {
		b.WriteString(s)
		return
	}
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
}

// dotIP returns the %{i} form of ip (§7.3): the dotted quad of an IPv4
// address, or the 32 nibbles of an IPv6 address in dot-format, lower case.
func dotIP(ip netip.Addr) string {
	if ip.Is4() {
		return ip.String()
	}
	if !ip.Is6() {
		return ""
	}
	const hex = "0123456789abcdef"
	a := ip.As16()
	out := make([]byte, 0, 63)
	for i, c := range a {
		if i > 0 {
			out = append(out, '.')
		}
		out = append(out, hex[c>>4], '.', hex[c&0xf])
	}
	return string(out)
}
