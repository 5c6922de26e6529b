// Package canon implements the DKIM canonicalization algorithms of RFC 6376
// §3.4 ("simple" and "relaxed", for header fields and for the body), the
// header-field selection of RFC 6376 §5.4.2, and the removal of a
// signature's b= value (RFC 6376 §3.7). DKIM and ARC (RFC 8617 §5.1, which
// imports them) share it.
package canon

import (
	"fmt"
	"strings"

	"github.com/authmilter/authmilter/internal/message"
)

// Canon is a canonicalization algorithm.
type Canon uint8

// The algorithms of RFC 6376 §3.4.
const (
	Simple Canon = iota
	Relaxed
)

// String returns the algorithm's name as written in c=.
func (c Canon) String() string {
	if c == Relaxed {
		return "relaxed"
	}
	return "simple"
}

// ParseAlgorithms parses a c= value, "header[/body]". RFC 6376 §3.5: a
// missing body algorithm is "simple"; names are compared case-sensitively
// (tag values are case-sensitive, RFC 6376 §3.2). The caller handles a
// missing c= tag (simple/simple in DKIM).
func ParseAlgorithms(v string) (header, body Canon, err error) {
	h, b, slash := strings.Cut(v, "/")
	if header, err = parseOne(h); err != nil {
		return 0, 0, err
	}
	if !slash {
		return header, Simple, nil
	}
	if body, err = parseOne(b); err != nil {
		return 0, 0, err
	}
	return header, body, nil
}

func parseOne(s string) (Canon, error) {
	switch s {
	case "simple":
		return Simple, nil
	case "relaxed":
		return Relaxed, nil
	}
	return 0, fmt.Errorf("canon: unknown canonicalization %q", s)
}

// Header returns the canonical form of one header field, ending in CRLF.
func Header(c Canon, f message.Field) []byte {
	return AppendHeader(nil, c, f.Raw)
}

// AppendHeader appends the canonical form of the raw header field raw
// ("Name:value CRLF", folding included) to dst.
//
// simple (RFC 6376 §3.4.1): the field unchanged. A field that lacks its
// final CRLF gets one.
//
// relaxed (RFC 6376 §3.4.2): the name in lower case, unfolded (every CRLF
// removed), each run of WSP reduced to one SP, WSP at the end of the value
// and around the colon removed, then CRLF.
func AppendHeader(dst []byte, c Canon, raw []byte) []byte {
	if c == Simple {
		dst = append(dst, raw...)
		if n := len(raw); n < 2 || raw[n-2] != '\r' || raw[n-1] != '\n' {
			dst = append(dst, '\r', '\n')
		}
		return dst
	}
	colon := -1
	for i, b := range raw {
		if b == ':' {
			colon = i
			break
		}
	}
	if colon < 0 {
		colon = len(raw)
	}
	name := raw[:colon]
	for len(name) > 0 && isWSP(name[len(name)-1]) {
		name = name[:len(name)-1]
	}
	for _, b := range name {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		dst = append(dst, b)
	}
	dst = append(dst, ':')
	if colon == len(raw) {
		return append(dst, '\r', '\n')
	}
	space, started := false, false
	for _, b := range raw[colon+1:] {
		switch {
		case b == '\r' || b == '\n':
			// Unfold: line breaks vanish; the WSP after them counts.
		case isWSP(b):
			space = true
		default:
			if space && started {
				dst = append(dst, ' ')
			}
			space, started = false, true
			dst = append(dst, b)
		}
	}
	return append(dst, '\r', '\n')
}

func isWSP(b byte) bool { return b == ' ' || b == '\t' }

// HeaderCap is a capacity that holds the canonical form (AppendHeader,
// either algorithm) of every field of header: its raw bytes, plus a CRLF a
// field may lack. A buffer made with it once per message does not grow
// while a signature's header data is built.
func HeaderCap(header []message.Field) int {
	n := 0
	for _, f := range header {
		n += len(f.Raw) + 2
	}
	return n
}

// Select returns the header fields a signature's h= list names, in h=
// order (RFC 6376 §5.4.2): each name takes the last field of that name not
// already taken, searching from the bottom of the header; a name with no
// field left selects nothing (the "null string" of §5.4). Names match
// case-insensitively.
func Select(fields []message.Field, names []string) []message.Field {
	used := make([]bool, len(fields))
	out := make([]message.Field, 0, len(names))
	for _, n := range names {
		for i := len(fields) - 1; i >= 0; i-- {
			if !used[i] && strings.EqualFold(fields[i].Name, n) {
				used[i] = true
				out = append(out, fields[i])
				break
			}
		}
	}
	return out
}

// StripSignature returns a copy of the raw signature header field with the
// value of its b= tag removed, as the signature covers itself (RFC 6376
// §3.7: "with the value of the b= tag (including all surrounding
// whitespace) deleted (i.e., treated as the empty string)"). Everything
// between the "=" and the next ";" (or the end of the field, before its
// final CRLF) goes. Other tags, including bh=, are untouched.
func StripSignature(raw []byte) []byte {
	colon := strings.IndexByte(string(raw), ':')
	if colon < 0 {
		return append([]byte(nil), raw...)
	}
	end := len(raw)
	if end >= 2 && raw[end-2] == '\r' && raw[end-1] == '\n' {
		end -= 2
	}
	out := make([]byte, 0, len(raw))
	out = append(out, raw[:colon+1]...)
	pos := colon + 1
	for pos <= end {
		semi := pos
		for semi < end && raw[semi] != ';' {
			semi++
		}
		spec := raw[pos:semi]
		eq := -1
		for i, b := range spec {
			if b == '=' {
				eq = i
				break
			}
		}
		if eq >= 0 && strings.TrimFunc(string(spec[:eq]), isFWSRune) == "b" {
			out = append(out, spec[:eq+1]...)
		} else {
			out = append(out, spec...)
		}
		if semi < end {
			out = append(out, ';')
		}
		pos = semi + 1
	}
	return append(out, raw[end:]...)
}

func isFWSRune(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }
