// Package message splits an RFC 5322 message into raw header fields and a
// body, keeping every byte as sent (needed for DKIM/ARC "simple"
// canonicalisation), and rebuilds raw fields from what a milter receives.
package message

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Field is one header field exactly as in the message: "Name:value" with
// its folding and the final CRLF.
type Field struct {
	Name string // as written, without the colon
	Raw  []byte
}

// Value returns the field's value: everything after the colon, without the
// final CRLF (folding kept). The colon is searched for, not assumed right
// after Name: RFC 5322 §4.5.3 (obs-optional) allows WSP before it, which Name
// does not hold.
func (f Field) Value() string {
	v := f.Raw
	if i := bytes.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	return string(bytes.TrimSuffix(v, []byte("\r\n")))
}

// Limits bound what ReadHeader accepts.
type Limits struct {
	MaxBytes  int // total header bytes (0: 1 MiB)
	MaxFields int // number of fields (0: 1000)
}

// Errors.
var (
	ErrHeaderTooLarge = errors.New("header section too large")
	ErrTooManyFields  = errors.New("too many header fields")
	ErrMalformed      = errors.New("malformed header field")
)

// ReadHeader reads header fields from r up to and including the blank line
// that ends them, leaving r at the start of the body. Bare LF line ends are
// converted to CRLF (messages stored with LF must be fed with CRLF). A line
// without a colon before the blank line is an error; a message without a
// body (EOF after the fields) is accepted.
func ReadHeader(r *bufio.Reader, lim Limits) ([]Field, error) {
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = 1 << 20
	}
	if lim.MaxFields <= 0 {
		lim.MaxFields = 1000
	}
	var fields []Field
	var cur []byte
	total := 0
	flush := func() error {
		if cur == nil {
			return nil
		}
		i := bytes.IndexByte(cur, ':')
		if i <= 0 {
			return fmt.Errorf("%w: %q", ErrMalformed, truncate(cur))
		}
		name := string(bytes.TrimRight(cur[:i], " \t"))
		if strings.ContainsAny(name, " \t") {
			return fmt.Errorf("%w: %q", ErrMalformed, truncate(cur))
		}
		if len(fields) == lim.MaxFields {
			return fmt.Errorf("%w: more than %d", ErrTooManyFields, lim.MaxFields)
		}
		fields = append(fields, Field{Name: name, Raw: cur})
		cur = nil
		return nil
	}
	for {
		line, err := readLine(r, lim.MaxBytes-total)
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) == 0 {
				return fields, flush()
			}
			if !errors.Is(err, io.EOF) {
				return nil, err
			}
		}
		total += len(line)
		if total > lim.MaxBytes {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrHeaderTooLarge, lim.MaxBytes)
		}
		if string(line) == "\r\n" {
			return fields, flush()
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur == nil {
				return nil, fmt.Errorf("%w: continuation line before any field", ErrMalformed)
			}
			cur = append(cur, line...)
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		cur = append([]byte(nil), line...)
	}
}

// readLine reads one line, normalising its end to CRLF (a final line
// without a newline gets one). max bounds the line length.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > max {
			return nil, fmt.Errorf("%w: line longer than the remaining %d bytes", ErrHeaderTooLarge, max)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if len(line) == 0 {
				return nil, err
			}
			line = append(bytes.TrimRight(line, "\r"), '\r', '\n')
			return line, io.EOF
		}
		break
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		line = append(line[:len(line)-1], '\r', '\n')
	}
	return line, nil
}

func truncate(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}

// FromMilter rebuilds a raw field from the name and value a milter receives.
// leadingSpace says the MTA kept the space after the colon (SMFIP_HDR_LEADSPC);
// without it one space is put back, the usual form. Folded lines, which the
// MTA joins with bare LF, get CRLF again.
func FromMilter(name, value string, leadingSpace bool) Field {
	return Field{Name: name, Raw: appendMilter([]byte(name), []byte(value), leadingSpace)}
}

// FromMilterBytes is FromMilter for a name and value the caller keeps
// (a milter packet's bytes): they are copied.
func FromMilterBytes(name, value []byte, leadingSpace bool) Field {
	return Field{Name: string(name), Raw: appendMilter(name, value, leadingSpace)}
}

// appendMilter returns name, a colon, the space a milter strips unless
// leadingSpace, value with its bare LF line ends made CRLF, and CRLF, in
// one new slice sized up front. Runs between line ends are copied whole.
func appendMilter(name, value []byte, leadingSpace bool) []byte {
	b := make([]byte, 0, len(name)+len(value)+4+bytes.Count(value, []byte{'\n'}))
	b = append(b, name...)
	b = append(b, ':')
	if !leadingSpace {
		b = append(b, ' ')
	}
	for {
		i := bytes.IndexByte(value, '\n')
		if i < 0 {
			b = append(b, value...)
			break
		}
		b = append(b, value[:i]...)
		// The byte before this LF is b's last: the value's, or the colon
		// or space before it.
		if b[len(b)-1] != '\r' {
			b = append(b, '\r')
		}
		b = append(b, '\n')
		value = value[i+1:]
	}
	return append(b, '\r', '\n')
}

// BodyCRLF copies a body from r to w converting bare LF line ends to CRLF,
// in chunks of chunk bytes, the last one shorter (as Postfix feeds a
// milter). w must not keep the slice it is given. A body that already has
// CRLF line ends is passed from the reader's buffer without a copy; one
// with bare LFs is converted through a buffer, runs between line ends
// moved whole.
func BodyCRLF(r io.Reader, chunk int, w func([]byte) error) error {
	chunk = max(chunk, 1)
	br := bufio.NewReaderSize(r, chunk) // r itself when a large enough bufio.Reader
	var buf []byte                      // converted bytes not yet passed to w; allocated on the first bare LF
	add := func(p []byte) error {
		if buf == nil {
			buf = make([]byte, 0, chunk)
		}
		for len(p) > 0 {
			n := min(chunk-len(buf), len(p))
			buf = append(buf, p[:n]...)
			p = p[n:]
			if len(buf) == chunk {
				if err := w(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		return nil
	}
	prevCR := false // the last byte read was a CR
	for {
		// A whole chunk, or what is left before EOF or a read error.
		data, rerr := br.Peek(chunk)
		if len(data) == 0 {
			if rerr == io.EOF {
				break
			}
			return rerr
		}
		bare := bareLF(data, prevCR)
		var err error
		switch {
		case bare < 0 && len(buf) == 0:
			err = w(data)
		case bare < 0:
			err = add(data)
		default:
			// Up to the bare LF, then CRLF in its place.
			if err = add(data[:bare]); err == nil {
				err = add(crlf)
			}
			data = data[:bare+1]
		}
		if err != nil {
			return err
		}
		prevCR = data[len(data)-1] == '\r'
		br.Discard(len(data))
	}
	if len(buf) > 0 {
		return w(buf)
	}
	return nil
}

// bareLF returns the index of the first LF in p not preceded by a CR (the
// byte before p was a CR when prevCR is set), or -1.
func bareLF(p []byte, prevCR bool) int {
	for i := 0; ; {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j
		if i == 0 && !prevCR || i > 0 && p[i-1] != '\r' {
			return i
		}
		i++
	}
}

var crlf = []byte("\r\n") // read-only
