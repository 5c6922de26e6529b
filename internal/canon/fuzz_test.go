package canon

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

func b64(p []byte) string { return base64.StdEncoding.EncodeToString(p) }

// FuzzBodyChunking checks that the body hash does not depend on how the
// body is cut into chunks, and that a length limit only truncates.
func FuzzBodyChunking(f *testing.F) {
	f.Add([]byte(rfcBody), uint8(3), uint8(7))
	f.Add([]byte("a\r\r\n \t\r\n\r\n"), uint8(1), uint8(2))
	f.Add([]byte{}, uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, size, split uint8) {
		for _, c := range []Canon{Simple, Relaxed} {
			want := hashWhole(c, body)
			if got := hashChunks(c, body, int(size)%17+1); got != want {
				t.Fatalf("%v: chunks of %d differ", c, int(size)%17+1)
			}
			i := int(split) % (len(body) + 1)
			h := NewBodyHasher(c, crypto.SHA256, -1)
			h.Write(body[:i])
			h.Write(body[i:])
			if got := b64(h.Sum()); got != b64(mustHex(want)) {
				t.Fatalf("%v: split at %d differs", c, i)
			}
			full := canonBody(c, string(body))
			l := int64(split)
			lh := NewBodyHasher(c, crypto.SHA256, l)
			lh.Write(body)
			lh.Sum()
			if wantLen := min(l, int64(len(full))); lh.Len() != wantLen {
				t.Fatalf("%v: l=%d hashed %d octets, want %d", c, l, lh.Len(), wantLen)
			}
			// The streaming canonicaliser agrees with the line-by-line
			// reference, in any chunking and under l=.
			ref := refBody(c, string(body))
			if full != ref {
				t.Fatalf("%v: %q canonicalised to %q, reference %q", c, body, full, ref)
			}
			if got := canonChunks(c, body, int(size)%17+1); got != ref {
				t.Fatalf("%v: chunks of %d canonicalised %q to %q, reference %q", c, int(size)%17+1, body, got, ref)
			}
			wantL := sha256.Sum256([]byte(ref[:min(int(l), len(ref))]))
			if !bytes.Equal(lh.Sum(), wantL[:]) {
				t.Fatalf("%v: l=%d hash differs from the reference", c, l)
			}
		}
	})
}

// refBody is a deliberately naive reading of RFC 6376 §3.4.3 and §3.4.4,
// line by line, to check the streaming BodyHasher against.
func refBody(c Canon, body string) string {
	lines := strings.Split(body, "\r\n") // the last element: an unterminated line
	if c == Relaxed {
		for i, l := range lines {
			// §3.4.4 a: WSP runs become one SP; b: WSP at line end goes.
			var b strings.Builder
			inWSP := false
			for j := 0; j < len(l); j++ {
				if l[j] == ' ' || l[j] == '\t' {
					inWSP = true
					continue
				}
				if inWSP {
					b.WriteByte(' ')
					inWSP = false
				}
				b.WriteByte(l[j])
			}
			lines[i] = b.String()
		}
	}
	// Trailing empty lines are ignored (both algorithms).
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		if c == Simple {
			return "\r\n"
		}
		return ""
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}

func canonChunks(c Canon, body []byte, n int) string {
	var buf bytes.Buffer
	b := &BodyHasher{c: c, h: &recorder{&buf}, limit: -1}
	for len(body) > 0 {
		k := min(n, len(body))
		b.Write(body[:k])
		body = body[k:]
	}
	b.Sum()
	return buf.String()
}

func mustHex(s string) []byte {
	b := make([]byte, len(s)/2)
	for i := range b {
		b[i] = unhex(s[2*i])<<4 | unhex(s[2*i+1])
	}
	return b
}

func unhex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}
