package domain

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse never panics, that what it accepts is a
// valid lower-case A-label name whose two forms parse back to it, and that
// its errors are valid UTF-8 (the offending character printed as a
// character).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"example.com", "Bücher.Example.", "xn--bcher-kva.example", "mx.bücher.example",
		"例え.テスト", "مثال.إختبار", "straße.de", "bücher\u3002example", "a\u200d.com",
		"xn--abc.com", "b\xc3cher.example", "_dmarc.example.com", "[192.0.2.1]", "..",
		"ǅ.example", "\u0130stanbul.example", "ⅻ.example", "😀.com", "a\u0308.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrInvalid", s, err)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("Parse(%q): error is not valid UTF-8: %q", s, err.Error())
			}
			if !n.IsZero() {
				t.Fatalf("Parse(%q): %+v with an error", s, n)
			}
			return
		}
		a := n.ASCII
		if a == "" || len(a) > MaxNameLen || strings.HasSuffix(a, ".") || a != strings.ToLower(a) || !isASCII(a) {
			t.Fatalf("Parse(%q).ASCII = %q", s, a)
		}
		for l := range strings.SplitSeq(a, ".") {
			if l == "" || len(l) > MaxLabelLen {
				t.Fatalf("Parse(%q).ASCII = %q has a bad label %q", s, a, l)
			}
		}
		for _, again := range []string{n.ASCII, n.Unicode} {
			m, err := Parse(again)
			if err != nil || m != n {
				t.Fatalf("Parse(%q) = %+v, but Parse(%q) = %+v, %v", s, n, again, m, err)
			}
		}
		if q, err := QueryName(s); err != nil || q != a {
			t.Fatalf("QueryName(%q) = %q, %v; Parse gave %q", s, q, err, a)
		}
	})
}
