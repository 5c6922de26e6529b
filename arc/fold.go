package arc

import "strings"

// maxLine is the line length folding aims for (RFC 5322 §2.1.1 SHOULD 78).
const maxLine = 78

// piece is a unit of a header value that folding never splits.
type piece struct {
	s     string
	glued bool // joined to the previous piece without a space (h= names, b= chunks)
	own   bool // starts a new line
}

// fold lays out "Name: value" from pieces, breaking lines before a piece
// (CRLF SP) when the line would pass maxLine. Folding only inserts FWS where
// the grammar allows it: between tags, between the names of h= and inside
// base64 values (RFC 6376 §3.5), and between the words of an A-R value.
func fold(name string, pieces []piece) []byte {
	var b strings.Builder
	b.WriteString(name)
	b.WriteString(":")
	col := len(name) + 1
	for i, p := range pieces {
		sep := " "
		if p.glued && i > 0 {
			sep = ""
		}
		if i > 0 && (p.own || col+len(sep)+len(p.s) > maxLine) {
			b.WriteString("\r\n ")
			col = 1
			sep = ""
		}
		b.WriteString(sep)
		b.WriteString(p.s)
		col += len(sep) + len(p.s)
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// words splits text at whitespace into pieces.
func words(text string) []piece {
	var out []piece
	for _, w := range strings.Fields(text) {
		out = append(out, piece{s: w})
	}
	return out
}

// base64Pieces lays out tag=value (b=) on lines of its own: the first
// holding the tag and 70 characters, the next 72 each; the pieces after it
// start on a new line as well.
func base64Pieces(tag, value, end string) []piece {
	first := min(70, len(value))
	out := []piece{{s: tag + "=" + value[:first], own: true}}
	for rest := value[first:]; len(rest) > 0; {
		n := min(72, len(rest))
		out = append(out, piece{s: rest[:n], own: true, glued: true})
		rest = rest[n:]
	}
	out[len(out)-1].s += end
	return out
}
