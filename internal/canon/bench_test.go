package canon

import (
	"crypto"
	"crypto/sha256"
	"strings"
	"testing"
)

// benchBody is about 20 KB of text with the features canonicalisation
// works on: runs of WSP inside lines, trailing WSP, empty lines.
func benchBody(size int) []byte {
	var b strings.Builder
	lines := []string{
		"The quick brown fox jumps over the lazy dog.  \t Again and again.\r\n",
		"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do  \r\n",
		"\r\n",
		"> quoted text with a single space between words, as most mail has\r\n",
	}
	for i := 0; b.Len() < size; i++ {
		b.WriteString(lines[i%len(lines)])
	}
	b.WriteString("\r\n\r\n")
	return []byte(b.String())
}

// BenchmarkBodyHasher hashes a 20 KB body in 64 KiB chunks (one Write, as
// a milter gets it) and in 1 KiB chunks; SHA256 is the floor.
func BenchmarkBodyHasher(b *testing.B) {
	body := benchBody(20 << 10)
	for _, tc := range []struct {
		name  string
		c     Canon
		chunk int
	}{
		{"simple", Simple, 64 << 10},
		{"relaxed", Relaxed, 64 << 10},
		{"relaxed/1KiB", Relaxed, 1 << 10},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				h := NewBodyHasher(tc.c, crypto.SHA256, -1)
				for p := body; len(p) > 0; {
					n := min(tc.chunk, len(p))
					h.Write(p[:n])
					p = p[n:]
				}
				h.Sum()
			}
		})
	}
	b.Run("SHA256", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			sha256.Sum256(body)
		}
	})
}

// BenchmarkAppendHeader canonicalises a typical header field (relaxed) into
// a reused buffer.
func BenchmarkAppendHeader(b *testing.B) {
	raw := []byte("Subject: Re: [list] a fairly long subject line that\r\n\tgoes on  and on\r\n")
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendHeader(buf[:0], Relaxed, raw)
	}
}
