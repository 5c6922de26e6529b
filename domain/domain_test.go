package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	for _, tc := range []struct {
		name, in    string
		ascii, uni  string
		errContains string // empty: no error
	}{
		{"ascii", "example.com", "example.com", "example.com", ""},
		{"ascii-upper-trailing-dot", "Mail.Example.COM.", "mail.example.com", "mail.example.com", ""},
		{"underscore", "_dmarc.example.com", "_dmarc.example.com", "_dmarc.example.com", ""},
		{"single-label", "localhost", "localhost", "localhost", ""},
		{"u-label", "bücher.example", "xn--bcher-kva.example", "bücher.example", ""},
		{"u-label-upper", "BÜCHER.Example.", "xn--bcher-kva.example", "bücher.example", ""},
		{"u-label-mixed-case", "BüCheR.example", "xn--bcher-kva.example", "bücher.example", ""},
		{"a-label", "xn--bcher-kva.example", "xn--bcher-kva.example", "bücher.example", ""},
		{"a-label-upper", "XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example", "bücher.example", ""},
		{"sub-u-label", "mx.bücher.example", "mx.xn--bcher-kva.example", "mx.bücher.example", ""},
		{"ideographic-stop", "bücher\u3002example", "xn--bcher-kva.example", "bücher.example", ""},
		{"japanese", "例え.テスト", "xn--r8jz45g.xn--zckzah", "例え.テスト", ""},
		{"arabic", "مثال.إختبار", "xn--mgbh0fb.xn--kgbechtv", "مثال.إختبار", ""},
		{"eszett-nontransitional", "straße.de", "xn--strae-oqa.de", "straße.de", ""},
		{"nfd-composed", "bu\u0308cher.example", "xn--bcher-kva.example", "bücher.example", ""},
		{"label-63", long63 + ".example", long63 + ".example", long63 + ".example", ""},

		{"empty", "", "", "", "empty name"},
		{"dot", ".", "", "", "empty name"},
		{"empty-label", "a..example", "", "", "empty label"},
		{"leading-dot", ".example.com", "", "", "empty label"},
		{"two-trailing-dots", "example.com..", "", "", "empty label"},
		{"label-64", long63 + "a.example", "", "", "longer than 63 octets"},
		{"name-254", strings.Repeat("a.", 126) + "aa", "", "", "longer than 253 octets"},
		{"space", "exa mple.com", "", "", `contains ' '`},
		{"address-literal", "[192.0.2.1]", "", "", `contains '['`},
		{"at-sign", "user@example.com", "", "", `contains '@'`},
		// The character, not its first byte: 'Ã' was the old bug.
		{"disallowed-rune", "ex\u2260ample.com", "", "", `contains '≠' (U+2260)`},
		{"zero-width-joiner", "a\u200d.example", "", "", `'\u200d' (U+200D)`},
		{"invalid-utf8", "b\xc3cher.example", "", "", "invalid UTF-8 at byte 1"},
		{"latin1-byte", "b\xfccher.example", "", "", "invalid UTF-8 at byte 1"},
		{"underscore-in-idn", "bü_cher.example", "", "", "underscore"},
		{"fake-a-label", "xn--abc.example", "", "", "invalid label"},
		{"ascii-a-label", "xn--example-.com", "", "", "invalid label"},
		{"hyphen-start-in-idn", "-foo.bücher.example", "", "", "invalid label"},
		{"long-u-label", strings.Repeat("üa", 40) + ".example", "", "", "longer than 63 octets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.errContains != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %+v, want an error containing %q", tc.in, got, tc.errContains)
				}
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.errContains) {
					t.Fatalf("Parse(%q) error %q, want ErrInvalid containing %q", tc.in, err, tc.errContains)
				}
				if !got.IsZero() {
					t.Errorf("Parse(%q) returned %+v with an error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got.ASCII != tc.ascii || got.Unicode != tc.uni {
				t.Errorf("Parse(%q) = {%q, %q}, want {%q, %q}", tc.in, got.ASCII, got.Unicode, tc.ascii, tc.uni)
			}
			if got.String() != tc.ascii {
				t.Errorf("String() = %q", got.String())
			}
		})
	}
}

func mustParse(t *testing.T, s string) Name {
	t.Helper()
	n, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return n
}

func TestEqual(t *testing.T) {
	u := mustParse(t, "Bücher.Example")
	a := mustParse(t, "xn--bcher-kva.example.")
	if !u.Equal(a) || !a.Equal(u) {
		t.Errorf("%+v and %+v: not Equal", u, a)
	}
	if !u.IsIDN() || mustParse(t, "example.com").IsIDN() {
		t.Error("IsIDN wrong")
	}
	if u.Equal(mustParse(t, "bucher.example")) {
		t.Error("bücher.example Equal bucher.example")
	}
}

func TestIsSameOrUnder(t *testing.T) {
	for _, tc := range []struct {
		name, parent string
		want         bool
	}{
		{"example.com", "example.com", true},
		{"Mail.Example.com.", "example.COM", true},
		{"a.b.example.com", "example.com", true},
		{"bexample.com", "example.com", false},
		{"example.com", "mail.example.com", false},
		{"com", "example.com", false},
		{"mx.bücher.example", "xn--bcher-kva.example", true},
		{"mx.xn--bcher-kva.example", "BÜCHER.example", true},
		{"bücher.example", "bucher.example", false},
	} {
		n, p := mustParse(t, tc.name), mustParse(t, tc.parent)
		if got := n.IsSameOrUnder(p); got != tc.want {
			t.Errorf("%q.IsSameOrUnder(%q) = %v, want %v", tc.name, tc.parent, got, tc.want)
		}
	}
	if mustParse(t, "example.com").IsSameOrUnder(Name{}) {
		t.Error("a name is under the zero Name")
	}
}

func TestLabelsParent(t *testing.T) {
	n := mustParse(t, "mx.Bücher.example")
	if n.Labels() != 3 || (Name{}).Labels() != 0 {
		t.Errorf("Labels() = %d", n.Labels())
	}
	p, ok := n.Parent()
	if !ok || p.ASCII != "xn--bcher-kva.example" || p.Unicode != "bücher.example" {
		t.Errorf("Parent() = %+v, %v", p, ok)
	}
	p, ok = p.Parent()
	if !ok || p.ASCII != "example" || p.Unicode != "example" {
		t.Errorf("Parent().Parent() = %+v, %v", p, ok)
	}
	if _, ok := p.Parent(); ok {
		t.Error("a single label has a parent")
	}
	if l := n.LastLabels(2); l.ASCII != "xn--bcher-kva.example" || l.Unicode != "bücher.example" {
		t.Errorf("LastLabels(2) = %+v", l)
	}
	if l := n.LastLabels(7); l != n {
		t.Errorf("LastLabels(7) = %+v", l)
	}
}

func TestQueryName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"Example.COM.", "example.com", true},
		{"foo+bar.example.com", "foo+bar.example.com", true},
		{"_spf.example.com", "_spf.example.com", true},
		{"bücher.example", "xn--bcher-kva.example", true},
		{"", "", false},
		{"a..b", "", false},
		{"a b.example", "", false},
		{`a\.b.example`, "", false},
		{strings.Repeat("a", 64) + ".example", "", false},
		{"b\xc3cher.example", "", false},
	} {
		got, err := QueryName(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("QueryName(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("QueryName(%q) error %v does not wrap ErrInvalid", tc.in, err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	for _, s := range []string{"mail.example.com", "Mail.Example.COM.", "mx.bücher.example"} {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
