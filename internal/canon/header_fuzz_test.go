package canon

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzHeader canonicalises arbitrary raw header fields. Neither algorithm
// may panic; simple keeps the field (adding a missing final CRLF); for a
// field whose name is a field name, relaxed (RFC 6376 §3.4.2) gives one line
// "name:value CRLF" with a lower-case name, no WSP but single SPs between
// words, none around the colon or at the end, is idempotent, and does not
// depend on how the value is folded.
func FuzzHeader(f *testing.F) {
	for _, s := range []string{
		"A: X\r\n",
		"B : Y\t\r\n\tZ  \r\n", // RFC 6376 §3.4.5 example
		"DKIM-Signature: v=1; a=rsa-sha256; d=example.net; s=brisbane;\r\n c=relaxed/simple; q=dns/txt; t=1117574938;\r\n h=from:to:subject; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n b=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZVoG4ZHRNiYzR\r\n",
		"Subject:\r\n",
		"X-Bare-LF: a\n b\r\n",
		"no colon\r\n",
		"x:\xff\x00 \x7f\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		simple := AppendHeader(nil, Simple, raw)
		if !bytes.HasPrefix(simple, raw) || !bytes.HasSuffix(simple, []byte("\r\n")) || len(simple) > len(raw)+2 {
			t.Fatalf("simple changed %q into %q", raw, simple)
		}
		relaxed := AppendHeader(nil, Relaxed, raw)
		colon := bytes.IndexByte(raw, ':')
		name := raw
		if colon >= 0 {
			name = raw[:colon]
		}
		name = bytes.TrimRight(name, " \t")
		if len(name) == 0 || bytes.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			return // not a field name: only "no panic" holds
		}
		body, ok := bytes.CutSuffix(relaxed, []byte("\r\n"))
		if !ok || bytes.ContainsAny(body, "\r\n\t") || bytes.Contains(body, []byte("  ")) || bytes.HasSuffix(body, []byte(" ")) {
			t.Fatalf("relaxed %q of %q: not one line with single SPs", relaxed, raw)
		}
		gotName, value, _ := bytes.Cut(body, []byte(":"))
		if string(gotName) != strings.ToLower(string(name)) || bytes.HasPrefix(value, []byte(" ")) {
			t.Fatalf("relaxed %q of %q: name or colon", relaxed, raw)
		}
		if again := AppendHeader(nil, Relaxed, relaxed); !bytes.Equal(again, relaxed) {
			t.Fatalf("relaxed not idempotent: %q then %q", relaxed, again)
		}
		if colon >= 0 {
			// Folding at any WSP does not change the canonical form.
			refolded := append(bytes.Clone(raw[:colon+1]), bytes.ReplaceAll(raw[colon+1:], []byte(" "), []byte("\r\n\t "))...)
			if got := AppendHeader(nil, Relaxed, refolded); !bytes.Equal(got, relaxed) {
				t.Fatalf("refolded %q gives %q, want %q", refolded, got, relaxed)
			}
		}
	})
}
