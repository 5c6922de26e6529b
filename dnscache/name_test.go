package dnscache

import "testing"

func TestNormalize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"example.com":         "example.com",
		"Example.COM.":        "example.com",
		"_dmarc.Example.com":  "_dmarc.example.com",
		"sel._domainkey.a.b.": "sel._domainkey.a.b",
		"*.example.com":       "*.example.com",
		"com":                 "com",
	} {
		if got, err := normalize(in); err != nil || got != want {
			t.Errorf("normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestIsAtOrUnder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, origin string
		want         bool
	}{
		{"example.com", "example.com", true},
		{"a.example.com", "example.com", true},
		{"a.b.example.com", "example.com", true},
		{"xexample.com", "example.com", false},
		{"example.com", "a.example.com", false},
		{"com", "example.com", false},
		{"anything", "", true},
	} {
		if got := isAtOrUnder(tc.name, tc.origin); got != tc.want {
			t.Errorf("isAtOrUnder(%q, %q) = %v", tc.name, tc.origin, got)
		}
	}
}

func TestJoinTXT(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		parts []string
		want  string
	}{
		{[]string{"v=spf1 ", "-all"}, "v=spf1 -all"},
		{[]string{`a\"b`}, `a"b`},
		{[]string{`a\\b`}, `a\b`},
		{[]string{`\009\255\000`}, "\t\xff\x00"},
		{[]string{`\256`}, "256"}, // not an octet: the backslash escapes "2"
		{[]string{`end\`}, `end\`},
		{nil, ""},
	} {
		if got := joinTXT(tc.parts); got != tc.want {
			t.Errorf("joinTXT(%q) = %q, want %q", tc.parts, got, tc.want)
		}
	}
}
