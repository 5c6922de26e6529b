package canon

import (
	"crypto"
	"hash"
)

// BodyHasher canonicalizes a body streamed through Write and hashes the
// result, optionally only its first limit octets (the l= tag, RFC 6376
// §3.5). Chunk boundaries may fall anywhere, including between the CR and
// LF of a line end. It is not safe for concurrent use.
//
// Both algorithms withhold what might turn out to be trailing empty lines
// (RFC 6376 §3.4.3 and §3.4.4 ignore them), and relaxed withholds
// whitespace that might end a line; nothing else is buffered.
type BodyHasher struct {
	c       Canon
	h       hash.Hash
	limit   int64 // < 0: none
	written int64

	crlfs   int  // withheld CRLFs (line ends not yet known to be non-trailing)
	cr      bool // the last byte was a CR whose LF has not been seen
	wsp     bool // relaxed: withheld whitespace inside a line
	content bool // any canonical content emitted
	buf     []byte
	sum     []byte
}

// NewBodyHasher returns a BodyHasher for algorithm c and hash h (which
// must be available). limit < 0 means the whole body; limit >= 0 hashes at
// most limit octets of the canonical body.
func NewBodyHasher(c Canon, h crypto.Hash, limit int64) *BodyHasher {
	return &BodyHasher{c: c, h: h.New(), limit: limit}
}

// Write feeds body bytes (CRLF line ends). It never fails.
func (b *BodyHasher) Write(p []byte) (int, error) {
	if b.sum != nil {
		panic("canon: Write after Sum")
	}
	out := b.buf[:0]
	relaxed := b.c == Relaxed
	i := 0
	for i < len(p) {
		c := p[i]
		if b.cr {
			b.cr = false
			if c == '\n' {
				// A line ends: relaxed drops the whitespace before it
				// (§3.4.4 b); the CRLF is withheld.
				b.wsp = false
				b.crlfs++
				i++
				continue
			}
			out = b.flush(out)
			out = append(out, '\r')
		}
		switch {
		case c == '\r':
			b.cr = true
			i++
		case relaxed && (c == ' ' || c == '\t'):
			b.wsp = true
			i++
		default:
			// A run of ordinary bytes, copied in one go.
			j := i + 1
			for j < len(p) {
				d := p[j]
				if d == '\r' || relaxed && (d == ' ' || d == '\t') {
					break
				}
				j++
			}
			out = b.flush(out)
			out = append(out, p[i:j]...)
			b.content = true
			i = j
		}
	}
	b.emit(out)
	b.buf = out[:0]
	return len(p), nil
}

// flush appends the withheld line ends and whitespace, now known to be
// followed by content.
func (b *BodyHasher) flush(out []byte) []byte {
	for ; b.crlfs > 0; b.crlfs-- {
		out = append(out, '\r', '\n')
	}
	if b.wsp {
		// §3.4.4 a: a run of WSP within a line becomes one SP.
		out = append(out, ' ')
		b.wsp = false
	}
	b.content = true
	return out
}

func (b *BodyHasher) emit(p []byte) {
	if b.limit >= 0 {
		if rest := b.limit - b.written; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	b.h.Write(p)
	b.written += int64(len(p))
}

// Sum finishes the body and returns its hash. Later calls return the same
// value.
//
// A non-empty body ends in exactly one CRLF (a final line without one gets
// it). An empty body is a single CRLF in simple (§3.4.3) and nothing in
// relaxed (§3.4.4).
func (b *BodyHasher) Sum() []byte {
	if b.sum != nil {
		return b.sum
	}
	var tail []byte
	if b.cr {
		// A bare CR at the very end is content.
		tail = b.flush(tail)
		tail = append(tail, '\r')
		b.cr = false
	}
	if b.wsp && b.c == Relaxed {
		// Whitespace at the end of an unterminated last line is dropped.
		b.wsp = false
	}
	if b.content || b.c == Simple {
		tail = append(tail, '\r', '\n')
	}
	b.emit(tail)
	b.sum = b.h.Sum(nil)
	return b.sum
}

// Len returns the number of canonical octets hashed so far.
func (b *BodyHasher) Len() int64 { return b.written }
