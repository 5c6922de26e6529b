package canon

import (
	"crypto"
	"encoding/base64"
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
		}
	})
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
