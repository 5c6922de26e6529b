// Package tagvalue parses the tag=value lists of RFC 6376 §3.2, shared by
// DKIM-Signature, DKIM key records and the ARC header fields (RFC 8617 §4.1).
package tagvalue

import (
	"errors"
	"fmt"
	"strings"
)

// ErrSyntax is wrapped by every error Parse returns.
var ErrSyntax = errors.New("tag-list syntax error")

// Tag is one tag-spec.
type Tag struct {
	Name  string
	Value string // with leading and trailing whitespace removed; inner FWS kept
}

// List is a parsed tag-list in the order written.
type List []Tag

// Get returns the value of the named tag. Tag names are case-sensitive
// (RFC 6376 §3.2).
func (l List) Get(name string) (string, bool) {
	for _, t := range l {
		if t.Name == name {
			return t.Value, true
		}
	}
	return "", false
}

// Has reports whether the named tag is present.
func (l List) Has(name string) bool {
	_, ok := l.Get(name)
	return ok
}

// Parse parses a tag-list:
//
//	tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
//	tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
//	tag-name  =  ALPHA *ALNUMPUNC
//	tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]   ; tval = 1*(%x21-3A / %x3C-7E)
//
// A duplicate tag name is an error (RFC 6376 §3.2: "Tags with duplicate
// names MUST NOT occur within a single tag-list"). An empty list (only
// whitespace) is valid and yields no tags.
func Parse(s string) (List, error) {
	var l List
	last := strings.Count(s, ";") // the index of the last tag-spec
	i := -1
	for spec := range strings.SplitSeq(s, ";") {
		i++
		if isFWS(spec) {
			// Only the optional trailing ";" may leave an empty spec; the
			// whole input being blank is also allowed.
			if i == last {
				continue
			}
			return nil, fmt.Errorf("%w: empty tag-spec at position %d", ErrSyntax, i+1)
		}
		eq := strings.IndexByte(spec, '=')
		if eq < 0 {
			return nil, fmt.Errorf("%w: %q has no '='", ErrSyntax, trimFWS(spec))
		}
		name := trimFWS(spec[:eq])
		if !validName(name) {
			return nil, fmt.Errorf("%w: invalid tag name %q", ErrSyntax, name)
		}
		value := trimFWS(spec[eq+1:])
		if err := checkValue(value); err != nil {
			return nil, fmt.Errorf("%w: tag %q: %v", ErrSyntax, name, err)
		}
		if l.Has(name) {
			return nil, fmt.Errorf("%w: duplicate tag %q", ErrSyntax, name)
		}
		if l == nil {
			l = make(List, 0, last+1) // one tag per tag-spec at most
		}
		l = append(l, Tag{Name: name, Value: value})
	}
	return l, nil
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

func isFWSByte(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isFWS(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isFWSByte(s[i]) {
			return false
		}
	}
	return true
}

func trimFWS(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r < 0x80 && isFWSByte(byte(r)) })
}

func validName(n string) bool {
	if n == "" || !isAlpha(n[0]) {
		return false
	}
	for i := 1; i < len(n); i++ {
		c := n[i]
		if !isAlpha(c) && !(c >= '0' && c <= '9') && c != '_' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// checkValue enforces VALCHAR and that whitespace inside a value is FWS:
// CR only before LF, LF only followed by WSP.
func checkValue(v string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 0x21 && c <= 0x7e && c != ';':
		case isWSP(c):
		case c == '\r':
			if i+1 >= len(v) || v[i+1] != '\n' {
				return errors.New("bare CR")
			}
		case c == '\n':
			if i+1 >= len(v) || !isWSP(v[i+1]) {
				return errors.New("line break not followed by whitespace")
			}
		case c >= 0x80:
			// RFC 6376 does not allow 8-bit bytes, but RFC 8616 (EAI)
			// permits UTF-8 in some values; accept them and let the
			// specific tag's parser decide.
		default:
			return fmt.Errorf("invalid character 0x%02x", c)
		}
	}
	return nil
}

// StripFWS removes all whitespace (as for b= and bh= values, RFC 6376 §3.5).
func StripFWS(s string) string {
	if strings.IndexAny(s, " \t\r\n") < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if !isFWSByte(s[i]) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
