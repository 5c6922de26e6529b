package canon

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/authmilter/authmilter/internal/message"
)

// The example of RFC 6376 §3.4.5.
var (
	rfcHeader = []message.Field{
		{Name: "A", Raw: []byte("A: X\r\n")},
		{Name: "B ", Raw: []byte("B : Y\t\r\n\tZ  \r\n")},
	}
	rfcBody = " C \r\nD \t E\r\n\r\n\r\n"
)

func TestHeaderRFC6376Example(t *testing.T) {
	tests := []struct {
		c    Canon
		want string
	}{
		{Simple, "A: X\r\nB : Y\t\r\n\tZ  \r\n"},
		{Relaxed, "a:X\r\nb:Y Z\r\n"},
	}
	for _, tt := range tests {
		var got []byte
		for _, f := range rfcHeader {
			got = append(got, Header(tt.c, f)...)
		}
		if string(got) != tt.want {
			t.Errorf("%v: got %q, want %q", tt.c, got, tt.want)
		}
	}
}

func TestHeaderRelaxed(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"case and colon space", "SUBJect \t:  hello  world \r\n", "subject:hello world\r\n"},
		{"folded", "To: a,\r\n  b,\r\n\tc\r\n", "to:a, b, c\r\n"},
		{"empty value", "X-Empty:\r\n", "x-empty:\r\n"},
		{"only whitespace", "X-Blank:   \r\n", "x-blank:\r\n"},
		{"no final CRLF", "X: y", "x:y\r\n"},
		{"fold right after colon", "X:\r\n y\r\n", "x:y\r\n"},
	}
	for _, tt := range tests {
		if got := AppendHeader(nil, Relaxed, []byte(tt.raw)); string(got) != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func canonBody(c Canon, body string) string {
	// Recover the canonical bytes by hashing with a recording "hash".
	var buf bytes.Buffer
	b := &BodyHasher{c: c, h: &recorder{&buf}, limit: -1}
	b.Write([]byte(body))
	b.Sum()
	return buf.String()
}

type recorder struct{ b *bytes.Buffer }

func (r *recorder) Write(p []byte) (int, error) { return r.b.Write(p) }
func (r *recorder) Sum(b []byte) []byte         { return b }
func (r *recorder) Reset()                      { r.b.Reset() }
func (r *recorder) Size() int                   { return 0 }
func (r *recorder) BlockSize() int              { return 1 }

func TestBody(t *testing.T) {
	tests := []struct {
		name           string
		body           string
		simple, relaxd string
	}{
		{"RFC 6376 §3.4.5", rfcBody, " C \r\nD \t E\r\n", " C\r\nD E\r\n"},
		{"empty", "", "\r\n", ""},
		{"only CRLFs", "\r\n\r\n\r\n", "\r\n", ""},
		{"whitespace lines at end", "a\r\n \t\r\n\r\n", "a\r\n \t\r\n", "a\r\n"},
		{"no final CRLF", "a\r\nb", "a\r\nb\r\n", "a\r\nb\r\n"},
		{"trailing WSP unterminated", "a  ", "a  \r\n", "a\r\n"},
		{"inner empty lines kept", "a\r\n\r\n\r\nb\r\n", "a\r\n\r\n\r\nb\r\n", "a\r\n\r\n\r\nb\r\n"},
		{"leading WSP", "\t\t a\r\n", "\t\t a\r\n", " a\r\n"},
		{"bare CR and LF are content", "a\rb\nc\r\n", "a\rb\nc\r\n", "a\rb\nc\r\n"},
		{"bare CR at end", "a\r", "a\r\r\n", "a\r\r\n"},
		{"CR before CRLF", "a\r\r\n", "a\r\r\n", "a\r\r\n"},
	}
	for _, tt := range tests {
		if got := canonBody(Simple, tt.body); got != tt.simple {
			t.Errorf("%s simple: got %q, want %q", tt.name, got, tt.simple)
		}
		if got := canonBody(Relaxed, tt.body); got != tt.relaxd {
			t.Errorf("%s relaxed: got %q, want %q", tt.name, got, tt.relaxd)
		}
	}
}

// Well-known body hashes: sha256 of "\r\n" (simple, empty body) and of ""
// (relaxed, empty body), as every DKIM signer publishes them.
func TestBodyHashEmpty(t *testing.T) {
	for _, tt := range []struct {
		c    Canon
		want string
	}{
		{Simple, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY="},
		{Relaxed, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
	} {
		h := NewBodyHasher(tt.c, crypto.SHA256, -1)
		got := b64(h.Sum())
		if got != tt.want {
			t.Errorf("%v: got %s, want %s", tt.c, got, tt.want)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	body := "hello  world\r\nsecond line\r\n"
	full := canonBody(Relaxed, body)
	for _, l := range []int64{0, 1, 5, 13, 14, int64(len(full)), 1000} {
		h := NewBodyHasher(Relaxed, crypto.SHA256, l)
		h.Write([]byte(body))
		want := full
		if l < int64(len(full)) {
			want = full[:l]
		}
		s := sha256.Sum256([]byte(want))
		if got := h.Sum(); !bytes.Equal(got, s[:]) {
			t.Errorf("l=%d: hash of %q expected", l, want)
		}
		if h.Len() != int64(len(want)) {
			t.Errorf("l=%d: Len %d, want %d", l, h.Len(), len(want))
		}
	}
}

func TestBodyChunking(t *testing.T) {
	bodies := []string{rfcBody, "a \r\n\r\n \r\nb\t\r\n\r\n", "x\r\r\n\r\n y  z \r", "\r\n\r\na"}
	for _, body := range bodies {
		for _, c := range []Canon{Simple, Relaxed} {
			want := hashWhole(c, []byte(body))
			// Every split point, and every chunk size.
			for i := 0; i <= len(body); i++ {
				h := NewBodyHasher(c, crypto.SHA256, -1)
				h.Write([]byte(body[:i]))
				h.Write([]byte(body[i:]))
				if got := hex.EncodeToString(h.Sum()); got != want {
					t.Fatalf("%v %q split at %d: hash differs", c, body, i)
				}
			}
			for n := 1; n <= len(body); n++ {
				if got := hashChunks(c, []byte(body), n); got != want {
					t.Fatalf("%v %q chunks of %d: hash differs", c, body, n)
				}
			}
		}
	}
}

func hashWhole(c Canon, body []byte) string {
	h := NewBodyHasher(c, crypto.SHA256, -1)
	h.Write(body)
	return hex.EncodeToString(h.Sum())
}

func hashChunks(c Canon, body []byte, n int) string {
	h := NewBodyHasher(c, crypto.SHA256, -1)
	for len(body) > 0 {
		k := min(n, len(body))
		h.Write(body[:k])
		body = body[k:]
	}
	return hex.EncodeToString(h.Sum())
}

func TestParseAlgorithms(t *testing.T) {
	tests := []struct {
		in   string
		h, b Canon
		ok   bool
	}{
		{"simple", Simple, Simple, true},
		{"relaxed", Relaxed, Simple, true},
		{"relaxed/relaxed", Relaxed, Relaxed, true},
		{"simple/relaxed", Simple, Relaxed, true},
		{"Relaxed/relaxed", 0, 0, false},
		{"", 0, 0, false},
		{"relaxed/", 0, 0, false},
		{"a/b/c", 0, 0, false},
	}
	for _, tt := range tests {
		h, b, err := ParseAlgorithms(tt.in)
		if (err == nil) != tt.ok || tt.ok && (h != tt.h || b != tt.b) {
			t.Errorf("%q: got %v/%v, %v", tt.in, h, b, err)
		}
	}
}

func TestSelect(t *testing.T) {
	fields := []message.Field{
		{Name: "From", Raw: []byte("From: a\r\n")},
		{Name: "Received", Raw: []byte("Received: 1\r\n")},
		{Name: "Received", Raw: []byte("Received: 2\r\n")},
		{Name: "subject", Raw: []byte("subject: s\r\n")},
	}
	got := Select(fields, []string{"received", "From", "Received", "Received", "Subject", "X-None"})
	var names []string
	for _, f := range got {
		names = append(names, string(f.Raw))
	}
	want := []string{"Received: 2\r\n", "From: a\r\n", "Received: 1\r\n", "subject: s\r\n"}
	if len(names) != len(want) {
		t.Fatalf("got %q", names)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Errorf("%d: got %q, want %q", i, names[i], want[i])
		}
	}
}

func TestStripSignature(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ARC-Seal: i=1; a=rsa-sha256; b=abc\r\n def; cv=none\r\n", "ARC-Seal: i=1; a=rsa-sha256; b=; cv=none\r\n"},
		{"X: bh=keep; b = x y ;d=z\r\n", "X: bh=keep; b =;d=z\r\n"},
		{"X: a=1;\r\n b=AAAA==\r\n", "X: a=1;\r\n b=\r\n"},
		{"X: a=1; b=AAAA==;\r\n", "X: a=1; b=;\r\n"},
		{"X: a=1", "X: a=1"},
	}
	for _, tt := range tests {
		if got := StripSignature([]byte(tt.in)); string(got) != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
}
