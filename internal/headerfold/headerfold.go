// Package headerfold lays out the header fields authmilter writes
// (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results,
// DKIM-Signature) on lines of at most 78 columns where possible (RFC 5322
// §2.1.1), breaking only where the field's grammar allows folding
// whitespace. ARC sealing and DKIM signing share it.
package headerfold

import "strings"

// MaxLine is the line length folding aims for (RFC 5322 §2.1.1 SHOULD 78).
const MaxLine = 78

// Piece is a unit of a header value that folding never splits.
type Piece struct {
	S     string
	Glued bool // joined to the previous piece without a space (h= names, b= chunks)
	Own   bool // starts a new line
}

// Fold lays out "Name: value" from pieces, breaking lines before a piece
// (CRLF SP) when the line would pass MaxLine. Folding only inserts FWS where
// the grammar allows it: between tags, between the names of h= and inside
// base64 values (RFC 6376 §3.5), and between the words of an A-R value.
// The result ends in CRLF.
func Fold(name string, pieces []Piece) []byte {
	var b strings.Builder
	b.WriteString(name)
	b.WriteString(":")
	col := len(name) + 1
	for i, p := range pieces {
		sep := " "
		if p.Glued && i > 0 {
			sep = ""
		}
		if i > 0 && (p.Own || col+len(sep)+len(p.S) > MaxLine) {
			b.WriteString("\r\n ")
			col = 1
			sep = ""
		}
		b.WriteString(sep)
		b.WriteString(p.S)
		col += len(sep) + len(p.S)
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// Words splits text at whitespace into pieces.
func Words(text string) []Piece {
	var out []Piece
	for _, w := range strings.Fields(text) {
		out = append(out, Piece{S: w})
	}
	return out
}

// Base64 lays out tag=value (b=) on lines of its own: the first holding
// the tag and 70 characters, the next 72 each; end (";" or "") follows the
// value, and the pieces after it start on a new line as well.
func Base64(tag, value, end string) []Piece {
	first := min(70, len(value))
	out := []Piece{{S: tag + "=" + value[:first], Own: true}}
	for rest := value[first:]; len(rest) > 0; {
		n := min(72, len(rest))
		out = append(out, Piece{S: rest[:n], Own: true, Glued: true})
		rest = rest[n:]
	}
	out[len(out)-1].S += end
	return out
}

// Names lays out a colon-separated list of header field names as h=
// (RFC 6376 §3.5), tag first and end after the last name; folding may
// break the list after any colon.
func Names(tag string, names []string, end string) []Piece {
	out := make([]Piece, 0, len(names))
	for k, name := range names {
		p := Piece{S: name + ":", Glued: k > 0}
		if k == 0 {
			p.S = tag + "=" + p.S
		}
		if k == len(names)-1 {
			p.S = strings.TrimSuffix(p.S, ":") + end
		}
		out = append(out, p)
	}
	return out
}
