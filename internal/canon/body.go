package canon

import (
	"crypto"
	"encoding/binary"
	"hash"
	"math/bits"
)

// BodyHasher canonicalizes a body streamed through Write and hashes the
// result, optionally only its first limit octets (the l= tag, RFC 6376
// §3.5). Chunk boundaries may fall anywhere, including between the CR and
// LF of a line end. It is not safe for concurrent use.
//
// Write scans each chunk once and passes runs of it straight to the hash;
// it copies nothing and, after NewBodyHasher, allocates nothing. Only
// what cannot be decided yet is carried from one chunk to the next, as
// counts and flags: the line ends that may turn out to be trailing empty
// lines (RFC 6376 §3.4.3 and §3.4.4 ignore them), a CR whose LF may come
// next, and, for relaxed, whitespace that may end a line.
type BodyHasher struct {
	c       Canon
	h       hash.Hash
	limit   int64 // < 0: none
	written int64

	crlfs   int  // withheld CRLFs (line ends not yet known to be non-trailing)
	cr      bool // the last byte was a CR whose LF has not been seen
	wsp     bool // relaxed: withheld whitespace inside a line
	content bool // any canonical content emitted
	sum     []byte
}

// NewBodyHasher returns a BodyHasher for algorithm c and hash h (which
// must be available). limit < 0 means the whole body; limit >= 0 hashes at
// most limit octets of the canonical body.
func NewBodyHasher(c Canon, h crypto.Hash, limit int64) *BodyHasher {
	return &BodyHasher{c: c, h: h.New(), limit: limit}
}

// crlfRun and space are the only bytes a BodyHasher writes that are not
// taken from the body: withheld line ends and the SP a WSP run becomes.
// Read-only.
var (
	crlfRun = []byte("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n")
	space   = []byte{' '}
	cr      = []byte{'\r'}
)

// Write feeds body bytes (CRLF line ends). It never fails.
func (b *BodyHasher) Write(p []byte) (int, error) {
	if b.sum != nil {
		panic("canon: Write after Sum")
	}
	if b.limit >= 0 && b.written >= b.limit {
		// l= reached: nothing more can be hashed (RFC 6376 §3.5).
		return len(p), nil
	}
	if len(p) == 0 {
		return 0, nil
	}
	i := 0
	if b.cr {
		// The chunk before ended in a CR.
		b.cr = false
		if p[0] == '\n' {
			b.lineEnd()
			i = 1
		} else {
			// A bare CR is content (RFC 6376 §3.4.3, §3.4.4 only treat
			// CRLF as a line end).
			b.flushPending()
			b.emit(cr)
		}
	}
	if b.c == Simple {
		b.writeSimple(p[i:])
	} else {
		b.writeRelaxed(p, i)
	}
	return len(p), nil
}

// lineEnd records a CRLF: withheld until content follows it. Relaxed drops
// the whitespace before it (RFC 6376 §3.4.4 b).
func (b *BodyHasher) lineEnd() {
	b.wsp = false
	b.crlfs++
}

// flushPending writes the withheld line ends and whitespace, now known to
// be followed by content.
func (b *BodyHasher) flushPending() {
	for n := b.crlfs; n > 0; {
		k := min(n, len(crlfRun)/2)
		b.emit(crlfRun[:2*k])
		n -= k
	}
	b.crlfs = 0
	if b.wsp {
		// §3.4.4 a: a run of WSP within a line becomes one SP.
		b.emit(space)
		b.wsp = false
	}
	b.content = true
}

// writeSimple handles a chunk for simple (RFC 6376 §3.4.3): everything is
// hashed as is except a run of CRLFs at the end of the chunk (and a final
// CR), which is withheld. Counting CRLF pairs from the end is unambiguous:
// an LF never starts a pair.
func (b *BodyHasher) writeSimple(p []byte) {
	end := len(p)
	cr := end > 0 && p[end-1] == '\r'
	if cr {
		end--
	}
	tail := 0
	for end >= 2 && p[end-2] == '\r' && p[end-1] == '\n' {
		end -= 2
		tail++
	}
	if end > 0 {
		b.flushPending()
		b.emit(p[:end])
	}
	b.crlfs += tail
	b.cr = cr
}

// writeRelaxed handles a chunk for relaxed (RFC 6376 §3.4.4) from
// position i. Bytes are kept as runs of p, p[start:end], written when
// something interrupts them; withheld CRLFs that lie in p right after the
// run (pendFrom) join it if content follows, so that ordinary text with
// single spaces and non-empty lines goes to the hash in one Write.
func (b *BodyHasher) writeRelaxed(p []byte, i int) {
	start, end := i, i
	pendFrom := -1 // p[pendFrom:i] holds exactly the withheld CRLFs, or -1
	// content is called when p[at] is content: whatever is withheld goes
	// before it.
	content := func(at int) {
		if b.crlfs == 0 && !b.wsp {
			if end != at {
				// Not next to the run (which cannot happen today):
				// write the run and start another.
				b.emit(p[start:end])
				start = at
			}
			end = at
			b.content = true
			return
		}
		if pendFrom >= 0 && !b.wsp {
			if pendFrom != end {
				b.emit(p[start:end])
				start = pendFrom
			}
			end = at
			b.crlfs = 0
			b.content = true
		} else {
			b.emit(p[start:end])
			b.flushPending()
			start, end = at, at
		}
		pendFrom = -1
	}
	n := len(p)
	for i < n {
		switch c := p[i]; c {
		case '\r':
			if i+1 == n {
				b.cr = true
				i = n
				break
			}
			if p[i+1] == '\n' {
				if b.crlfs == 0 {
					pendFrom = i
				} else if pendFrom >= 0 && pendFrom+2*b.crlfs != i {
					pendFrom = -1
				}
				b.lineEnd()
				i += 2
				break
			}
			// A bare CR: content.
			content(i)
			i++
			end = i
		case ' ', '\t':
			j := i + 1
			for j < n && (p[j] == ' ' || p[j] == '\t') {
				j++
			}
			if j == n || p[j] == '\r' {
				// Perhaps at the end of a line: withheld.
				if start != end {
					b.emit(p[start:end])
				}
				start, end = j, j
				if b.crlfs > 0 && pendFrom >= 0 {
					// The withheld CRLFs are no longer next to the
					// run that may follow.
					pendFrom = -1
				}
				b.wsp = true
				i = j
				break
			}
			// WSP inside a line: one SP (§3.4.4 a).
			carried := b.wsp // a run that began in an earlier chunk
			content(i)
			switch {
			case carried:
				// content wrote the SP.
				start, end = j, j
			case c == ' ' && j == i+1:
				end = j // a single SP stays as it is
			case c == ' ':
				b.emit(p[start : i+1])
				start, end = j, j
			default:
				b.emit(p[start:i])
				b.emit(space)
				start, end = j, j
			}
			i = j
		default:
			content(i)
			i = scanPlain(p, i+1)
			end = i
		}
	}
	if start != end {
		b.emit(p[start:end])
	}
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// lessBytes flags (high bit set) the bytes of x below n (n <= 128): the
// lowest flag is exact, higher ones may be spurious after a flagged byte.
func lessBytes(x uint64, n byte) uint64 { return (x - lsb*uint64(n)) &^ x & msb }

// scanPlain returns the index of the first byte at or after i that relaxed
// canonicalisation must look at: a CR, a TAB, or an SP that is followed by
// WSP, by CR or by the end of p. Everything before it is hashed as it is.
//
// It tests eight bytes at a time, x holding p[i:i+8] and y p[i+1:i+9]: a
// byte below 0x0E (TAB and CR, and rarer controls), or an SP whose next
// byte is at most SP. The test may flag more than it should but never
// misses, so the byte it finds is checked again and the scan resumes after
// it if it was not one.
func scanPlain(p []byte, i int) int {
	for i+9 <= len(p) {
		x := binary.LittleEndian.Uint64(p[i:])
		y := binary.LittleEndian.Uint64(p[i+1:])
		m := lessBytes(x, 0x0e) | lessBytes(x^(lsb*' '), 1)&lessBytes(y, 0x21)
		if m == 0 {
			i += 8
			continue
		}
		k := i + bits.TrailingZeros64(m)/8
		if special(p, k) {
			return k
		}
		i = k + 1
	}
	for ; i < len(p); i++ {
		if special(p, i) {
			return i
		}
	}
	return i
}

// special reports whether p[k] needs relaxed canonicalisation's attention
// (see scanPlain).
func special(p []byte, k int) bool {
	switch p[k] {
	case '\t', '\r':
		return true
	case ' ':
		if k+1 == len(p) {
			return true
		}
		d := p[k+1]
		return d == ' ' || d == '\t' || d == '\r'
	}
	return false
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
	if b.cr {
		// A bare CR at the very end is content.
		b.flushPending()
		b.emit(cr)
		b.cr = false
	}
	// Whitespace at the end of an unterminated last line is dropped
	// (relaxed), and so are trailing empty lines (both).
	b.wsp = false
	b.crlfs = 0
	if b.content || b.c == Simple {
		b.emit(crlfRun[:2])
	}
	b.sum = b.h.Sum(nil)
	return b.sum
}

// Len returns the number of canonical octets hashed so far.
func (b *BodyHasher) Len() int64 { return b.written }
