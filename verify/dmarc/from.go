package dmarc

import (
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
)

// AuthorDomains extracts the Author Domains (RFC 9989 §3.2.2, §5.3.1) from
// the values of the message's From header fields, one string per field, as
// received (folding is allowed). It returns the distinct domains, as
// A-labels in lower case, in the order they appear.
//
// Addresses are read with net/mail; when it refuses the field (display-name
// junk, unknown encoded-word charsets, unbalanced quotes), a tolerant scanner
// takes the domain of each angle-addr or bare addr-spec instead, so a
// malformed display name cannot hide the domain from DMARC.
//
// Errors (all permerror for Evaluate): ErrNoFrom when there is no From field,
// ErrNoAuthor when the fields hold no address (e.g. an empty group),
// ErrFromSyntax when no address can be found at all, ErrAuthorDomain when a
// domain is not a valid domain name (including address literals).
func AuthorDomains(from []string) ([]string, error) {
	if len(from) == 0 {
		return nil, ErrNoFrom
	}
	var domains []string
	seen := map[string]bool{}
	for _, v := range from {
		raw, err := rawDomains(v)
		if err != nil {
			return nil, err
		}
		for _, r := range raw {
			d, err := normalizeDomain(r)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrAuthorDomain, err)
			}
			if !seen[d] {
				seen[d] = true
				domains = append(domains, d)
			}
		}
	}
	if len(domains) == 0 {
		return nil, ErrNoAuthor
	}
	return domains, nil
}

// rawDomains returns the domain part of every address in one From value.
func rawDomains(v string) ([]string, error) {
	v = unfold(v)
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("%w: empty field", ErrNoAuthor)
	}
	// Encoded words in any charset decode by passing the bytes through: only
	// the addresses matter here, never the display names.
	p := mail.AddressParser{WordDecoder: &mime.WordDecoder{
		CharsetReader: func(_ string, input io.Reader) (io.Reader, error) { return input, nil },
	}}
	if list, err := p.ParseList(v); err == nil {
		out := make([]string, 0, len(list))
		for _, a := range list {
			at := strings.LastIndexByte(a.Address, '@')
			if at < 0 {
				return nil, fmt.Errorf("%w: %q has no domain", ErrFromSyntax, a.Address)
			}
			out = append(out, a.Address[at+1:])
		}
		return out, nil
	}
	out := scanDomains(v)
	if len(out) == 0 && strings.Count(v, `"`)%2 == 1 {
		// An unbalanced quote would swallow the rest of the field.
		out = scanDomains(strings.ReplaceAll(v, `"`, ""))
	}
	if len(out) == 0 {
		if isEmptyGroup(v) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %q", ErrFromSyntax, truncate(v))
	}
	return out, nil
}

// unfold removes the CRLF (or bare LF) of folded lines (RFC 5322 §2.2.3).
func unfold(v string) string {
	if !strings.ContainsAny(v, "\r\n") {
		return v
	}
	return strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(v)
}

// isEmptyGroup recognises "name:;" (an RFC 5322 §3.4 group without members),
// which net/mail does not accept in every form.
func isEmptyGroup(v string) bool {
	v = strings.TrimSpace(v)
	i := strings.IndexByte(v, ':')
	return i >= 0 && strings.TrimSpace(v[i+1:]) == ";" && !strings.Contains(v, "@")
}

// scanDomains is the tolerant fallback: it splits the value on commas that
// are outside quoted strings, comments and angle brackets, and takes from
// each element the domain of its last angle-addr, or else of its bare
// addr-spec. A group's "name:" prefix and final ";" are skipped.
func scanDomains(v string) []string {
	var out []string
	for _, elem := range splitTopLevel(v) {
		addr := lastAngleAddr(elem)
		if addr == "" {
			addr = stripComments(elem)
			if i := strings.IndexByte(addr, ':'); i >= 0 && !strings.Contains(addr[:i], "@") {
				addr = addr[i+1:] // group display-name
			}
			addr = strings.TrimRight(strings.TrimSpace(addr), ";")
		}
		at := lastUnquotedAt(addr)
		if at < 0 {
			continue
		}
		d := strings.TrimSpace(addr[at+1:])
		d = strings.TrimRight(d, ">;,")
		if d != "" {
			out = append(out, d)
		}
	}
	return out
}

// splitTopLevel splits on commas outside quotes, comments and <...>.
func splitTopLevel(v string) []string {
	var parts []string
	start, depth, inQuote, inAngle := 0, 0, false, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && (inQuote || depth > 0):
			i++
		case c == '"' && depth == 0:
			inQuote = !inQuote
		case inQuote:
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '<':
			inAngle = true
		case c == '>':
			inAngle = false
		case c == ',' && !inAngle:
			parts = append(parts, v[start:i])
			start = i + 1
		}
	}
	return append(parts, v[start:])
}

// lastAngleAddr returns the content of the last <...> outside quotes and
// comments, or "".
func lastAngleAddr(elem string) string {
	addr := ""
	depth, inQuote, open := 0, false, -1
	for i := 0; i < len(elem); i++ {
		switch c := elem[i]; {
		case c == '\\' && (inQuote || depth > 0):
			i++
		case c == '"' && depth == 0 && open < 0:
			inQuote = !inQuote
		case inQuote:
		case c == '(' && open < 0:
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '<':
			open = i
		case c == '>' && open >= 0:
			addr = elem[open+1 : i]
			open = -1
		}
	}
	if open >= 0 && addr == "" {
		addr = elem[open+1:] // unterminated: take what follows "<"
	}
	return strings.TrimSpace(addr)
}

// stripComments removes RFC 5322 comments outside quoted strings.
func stripComments(s string) string {
	var b strings.Builder
	depth, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (inQuote || depth > 0):
			if depth == 0 {
				b.WriteByte(c)
				b.WriteByte(s[i+1])
			}
			i++
			continue
		case c == '"' && depth == 0:
			inQuote = !inQuote
		case !inQuote && c == '(':
			depth++
			continue
		case !inQuote && c == ')' && depth > 0:
			depth--
			continue
		}
		if depth == 0 {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// lastUnquotedAt returns the index of the last "@" outside a quoted local
// part, or -1.
func lastUnquotedAt(s string) int {
	at, inQuote := -1, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case '@':
			if !inQuote {
				at = i
			}
		}
	}
	return at
}
