package authres

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/authmilter/authmilter/verify"
)

// Parse parses the value of an Authentication-Results field (RFC 8601
// §2.2), everything after the colon. It is tolerant in the ways listed in
// the package documentation; an error wraps ErrSyntax or ErrNoAuthServID.
func Parse(value string) (*Header, error) {
	p := &scanner{s: value}
	id, err := p.authservID()
	if err != nil {
		return nil, err
	}
	h := &Header{AuthServID: id}

	// RFC 8601 §2.2: authserv-id [ CFWS authres-version ].
	if err := p.cfws(); err != nil {
		return nil, err
	}
	if c := p.peek(); c >= '0' && c <= '9' {
		digits := p.run(func(c byte) bool { return c >= '0' && c <= '9' })
		v, err := strconv.Atoi(digits)
		if err != nil || v > 1<<20 {
			return nil, p.errorf("authres-version %q out of range", digits)
		}
		h.Version = v
	}

	for {
		if err := p.cfws(); err != nil {
			return nil, err
		}
		if p.eof() {
			return h, nil
		}
		if p.peek() != ';' {
			return nil, p.errorf("expected ';'")
		}
		p.i++
		r, ok, err := p.resinfo()
		if err != nil {
			return nil, err
		}
		if ok {
			h.Results = append(h.Results, r)
		}
	}
}

// AuthServID returns the authserv-id of an Authentication-Results field
// value (RFC 8601 §2.2), unquoted, ignoring whatever follows it, so that
// it still finds the id of fields Parse would refuse: leading CFWS,
// comments and folding are skipped, a quoted-string id is unquoted, and a
// version or any other text after the id does not matter. The id ends at
// white space, a control character, ';', '(' or '"'. It fails only when
// there is no id at all or its quoted-string or a comment before it is not
// closed.
func AuthServID(value string) (string, error) {
	p := &scanner{s: value}
	return p.authservID()
}

// SameAuthServID reports whether two authserv-ids name the same
// authentication service. Authserv-ids are normally domain names (RFC 8601
// §2.5), compared without regard to case (RFC 4343) and to a trailing dot;
// surrounding white space is ignored too. Case folding is Unicode simple
// folding (strings.EqualFold), which errs towards a match: the milter
// uses this to find fields forged under its own id. An empty id matches
// nothing.
func SameAuthServID(a, b string) bool {
	a = strings.TrimSuffix(strings.TrimSpace(a), ".")
	b = strings.TrimSuffix(strings.TrimSpace(b), ".")
	return a != "" && strings.EqualFold(a, b)
}

// scanner reads a field value.
type scanner struct {
	s        string
	i        int
	comments []string // comments seen by cfws since the last reset
}

func (p *scanner) eof() bool { return p.i >= len(p.s) }

func (p *scanner) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}

func (p *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrSyntax, p.i, fmt.Sprintf(format, args...))
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// cfws skips white space, line breaks (folding, CRLF or bare LF) and
// comments, keeping the comments' text (RFC 5322 §3.2.2).
func (p *scanner) cfws() error {
	for !p.eof() {
		switch c := p.s[p.i]; {
		case isWSP(c):
			p.i++
		case c == '(':
			text, err := p.comment()
			if err != nil {
				return err
			}
			if text != "" {
				p.comments = append(p.comments, text)
			}
		default:
			return nil
		}
	}
	return nil
}

// comment reads a comment starting at '(' and returns its text with
// quoted-pairs resolved, nested comments kept with their parentheses, and
// runs of white space collapsed to one space. It loops rather than
// recurses, so nesting depth costs no stack.
func (p *scanner) comment() (string, error) {
	start := p.i
	p.i++ // '('
	depth := 1
	var b strings.Builder
	space := true
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\' && !p.eof():
			c = p.s[p.i]
			p.i++
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return strings.TrimRight(b.String(), " "), nil
			}
		}
		if isWSP(c) {
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		b.WriteByte(c)
		space = false
	}
	p.i = start
	return "", p.errorf("unterminated comment")
}

// quoted reads a quoted-string starting at '"' (RFC 2045 §5.1, RFC 5322
// §3.2.4) and returns its content: quoted-pairs resolved, line breaks of
// folding removed, other white space kept.
func (p *scanner) quoted() (string, error) {
	start := p.i
	p.i++ // '"'
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '"':
			return b.String(), nil
		case c == '\\' && !p.eof():
			c = p.s[p.i]
			p.i++
		case c == '\r' || c == '\n':
			continue // RFC 5322 §2.2.3 unfolding
		}
		b.WriteByte(c)
	}
	p.i = start
	return "", p.errorf("unterminated quoted-string")
}

// run reads the longest run of bytes satisfying ok.
func (p *scanner) run(ok func(byte) bool) string {
	start := p.i
	for !p.eof() && ok(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// isBare reports whether c may continue an unquoted value as read here:
// anything but white space, control characters, ';', '(' and '"'. That is
// wider than a token or the address form, for tolerance.
func isBare(c byte) bool {
	return c > ' ' && c != 0x7f && c != ';' && c != '(' && c != '"'
}

// isKeywordChar is wider than Keyword ('_' too) for tolerance.
func isKeywordChar(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

// value reads a value (token / quoted-string, RFC 2045 §5.1) or a pvalue
// ([[local-part] "@"] domain-name, RFC 8601 §2.2) after optional CFWS. A
// quoted local-part followed by "@domain" is returned unquoted.
func (p *scanner) value() (string, error) {
	if err := p.cfws(); err != nil {
		return "", err
	}
	if p.peek() != '"' {
		return p.run(isBare), nil
	}
	v, err := p.quoted()
	if err != nil {
		return "", err
	}
	if p.peek() == '@' {
		v += p.run(isBare)
	}
	return v, nil
}

// authservID reads the authserv-id: [CFWS] value.
func (p *scanner) authservID() (string, error) {
	if err := p.cfws(); err != nil {
		return "", err
	}
	if p.peek() == '"' {
		return p.quoted() // an explicit "" is an (empty) id
	}
	id := p.run(isBare)
	if id == "" {
		return "", fmt.Errorf("%w at offset %d", ErrNoAuthServID, p.i)
	}
	return id, nil
}

// keyword reads a Keyword after optional CFWS, lower-cased (RFC 5234 §2.3).
func (p *scanner) keyword(what string) (string, error) {
	if err := p.cfws(); err != nil {
		return "", err
	}
	k := p.run(isKeywordChar)
	if k == "" {
		return "", p.errorf("expected %s", what)
	}
	return strings.ToLower(k), nil
}

// expect skips CFWS and consumes c.
func (p *scanner) expect(c byte, after string) error {
	if err := p.cfws(); err != nil {
		return err
	}
	if p.peek() != c {
		return p.errorf("expected %q after %s", c, after)
	}
	p.i++
	return nil
}

// resinfo reads one resinfo after its ';' (RFC 8601 §2.2):
//
//	resinfo = [CFWS] ";" methodspec [ CFWS reasonspec ] [ CFWS 1*propspec ]
//	methodspec = [CFWS] method [CFWS] "=" [CFWS] result
//	method = Keyword [ [CFWS] "/" [CFWS] method-version ]
//	reasonspec = "reason" [CFWS] "=" [CFWS] value
//	propspec = ptype [CFWS] "." [CFWS] property [CFWS] "=" pvalue
//
// ok is false for "none" (no-result) and for an empty resinfo (";;" or a
// trailing ";", tolerated). The method version is read and dropped.
func (p *scanner) resinfo() (r Result, ok bool, err error) {
	p.comments = p.comments[:0]
	if err := p.cfws(); err != nil {
		return r, false, err
	}
	if p.eof() || p.peek() == ';' {
		return r, false, nil
	}
	if r.Method, err = p.keyword("method"); err != nil {
		return r, false, err
	}
	if err := p.cfws(); err != nil {
		return r, false, err
	}
	// RFC 8601 §2.2 no-result: ";" [CFWS] "none".
	if r.Method == "none" && (p.eof() || p.peek() == ';') {
		return r, false, nil
	}
	if p.peek() == '/' {
		p.i++
		if err := p.cfws(); err != nil {
			return r, false, err
		}
		if p.run(func(c byte) bool { return c >= '0' && c <= '9' }) == "" {
			return r, false, p.errorf("expected method-version after %s/", r.Method)
		}
	}
	if err := p.expect('=', "method "+r.Method); err != nil {
		return r, false, err
	}
	res, err := p.keyword("result of " + r.Method)
	if err != nil {
		return r, false, err
	}
	r.Value = verify.Status(res)

	for {
		if err := p.cfws(); err != nil {
			return r, false, err
		}
		if p.eof() || p.peek() == ';' {
			break
		}
		name, err := p.keyword("reason or property")
		if err != nil {
			return r, false, err
		}
		if err := p.cfws(); err != nil {
			return r, false, err
		}
		prop := Property{Name: name}
		if p.peek() == '.' {
			p.i++
			prop.Type = name
			if prop.Name, err = p.keyword("property after " + name + "."); err != nil {
				return r, false, err
			}
		}
		if err := p.expect('=', name); err != nil {
			return r, false, err
		}
		v, err := p.value()
		if err != nil {
			return r, false, err
		}
		if prop.Type == "" && name == "reason" && r.Reason == "" {
			r.Reason = v
			continue
		}
		// A property without ptype (not in RFC 8601 §2.2, written by some
		// providers) keeps an empty Type.
		prop.Value = v
		r.Props = append(r.Props, prop)
	}
	r.Comment = strings.Join(p.comments, " ")
	return r, true, nil
}
