package spf

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/verify"
)

func TestIsSPFRecord(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"v=spf1":            true,
		"v=spf1 -all":       true,
		"V=SpF1 ~all":       true,
		"v=spf1  a":         true,
		"v=spf10":           false,
		"v=spf1mx":          false,
		"v=spf1\t-all":      false,
		" v=spf1 -all":      false,
		"v=spf2.0/pra -all": false,
		"spf1":              false,
		"":                  false,
	} {
		if got := isSPFRecord(in); got != want {
			t.Errorf("isSPFRecord(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestParseRecord(t *testing.T) {
	t.Parallel()
	type dir struct {
		text         string
		result       verify.Status
		kind         mechKind
		prefix       string // ip4, ip6
		cidr4, cidr6 int    // a, mx
	}
	tests := []struct {
		name     string
		in       string
		want     []dir
		redirect string
		exp      string
	}{
		{name: "empty", in: "v=spf1"},
		{name: "trailing-space", in: "v=spf1 -all ", want: []dir{{"-all", verify.StatusFail, mechAll, "", 32, 128}}},
		{name: "two-spaces", in: "v=spf1 a  -all", want: []dir{
			{"a", verify.StatusPass, mechA, "", 32, 128}, {"-all", verify.StatusFail, mechAll, "", 32, 128}}},
		{name: "qualifiers", in: "v=spf1 +all -all ~all ?all", want: []dir{
			{"+all", verify.StatusPass, mechAll, "", 32, 128}, {"-all", verify.StatusFail, mechAll, "", 32, 128},
			{"~all", verify.StatusSoftfail, mechAll, "", 32, 128}, {"?all", verify.StatusNeutral, mechAll, "", 32, 128}}},
		{name: "case-insensitive-names", in: "v=spf1 MX A:Example.COM IP4:192.0.2.1 -ALL", want: []dir{
			{"MX", verify.StatusPass, mechMX, "", 32, 128}, {"A:Example.COM", verify.StatusPass, mechA, "", 32, 128},
			{"IP4:192.0.2.1", verify.StatusPass, mechIP4, "192.0.2.1/32", 0, 0}, {"-ALL", verify.StatusFail, mechAll, "", 32, 128}}},
		{name: "ip4-network", in: "v=spf1 ip4:192.0.2.77/24", want: []dir{
			{"ip4:192.0.2.77/24", verify.StatusPass, mechIP4, "192.0.2.0/24", 0, 0}}},
		{name: "ip6-network", in: "v=spf1 ip6:2001:DB8::1/32 ip6:::1.1.1.1/0", want: []dir{
			{"ip6:2001:DB8::1/32", verify.StatusPass, mechIP6, "2001:db8::/32", 0, 0},
			{"ip6:::1.1.1.1/0", verify.StatusPass, mechIP6, "::/0", 0, 0}}},
		{name: "dual-cidr", in: "v=spf1 a/24//64 mx//0 a:foo.example.com/0 mx:foo:bar/baz.example.com", want: []dir{
			{"a/24//64", verify.StatusPass, mechA, "", 24, 64}, {"mx//0", verify.StatusPass, mechMX, "", 32, 0},
			{"a:foo.example.com/0", verify.StatusPass, mechA, "", 0, 128},
			{"mx:foo:bar/baz.example.com", verify.StatusPass, mechMX, "", 32, 128}}},
		{name: "modifiers", in: "v=spf1 redirect=_spf.example.com exp=explain.%{d} moo.cow-far_out=man:dog/cat default=+",
			redirect: "redirect=_spf.example.com", exp: "exp=explain.%{d}"},
		{name: "macro-domain-end", in: "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} include:%{d2}", want: []dir{
			{"exists:%{ir}.%{l1r+-}._spf.%{d}", verify.StatusPass, mechExists, "", 32, 128},
			{"include:%{d2}", verify.StatusPass, mechInclude, "", 32, 128}}},
		{name: "toplabel-with-dash", in: "v=spf1 a:foo.example.xn--zckzah", want: []dir{
			{"a:foo.example.xn--zckzah", verify.StatusPass, mechA, "", 32, 128}}},
		{name: "empty-label-is-syntax", in: "v=spf1 a:mail.example...com", want: []dir{
			{"a:mail.example...com", verify.StatusPass, mechA, "", 32, 128}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := parseRecord(tt.in)
			if err != nil {
				t.Fatalf("parseRecord(%q): %v", tt.in, err)
			}
			if len(rec.directives) != len(tt.want) {
				t.Fatalf("%d directives, want %d", len(rec.directives), len(tt.want))
			}
			for i, w := range tt.want {
				d := rec.directives[i]
				if d.text != w.text || d.result != w.result || d.kind != w.kind {
					t.Errorf("directive %d = %q %s %d, want %q %s %d", i, d.text, d.result, d.kind, w.text, w.result, w.kind)
				}
				switch w.kind {
				case mechIP4, mechIP6:
					if d.prefix != netip.MustParsePrefix(w.prefix) {
						t.Errorf("directive %d prefix %v, want %s", i, d.prefix, w.prefix)
					}
				case mechA, mechMX:
					if d.cidr4 != w.cidr4 || d.cidr6 != w.cidr6 {
						t.Errorf("directive %d cidr %d/%d, want %d/%d", i, d.cidr4, d.cidr6, w.cidr4, w.cidr6)
					}
				}
			}
			if got := modText(rec.redirect); got != tt.redirect {
				t.Errorf("redirect %q, want %q", got, tt.redirect)
			}
			if got := modText(rec.exp); got != tt.exp {
				t.Errorf("exp %q, want %q", got, tt.exp)
			}
		})
	}
}

func modText(m *modifier) string {
	if m == nil {
		return ""
	}
	return m.text
}

func TestParseRecordErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in string }{
		{"not-spf", "v=spf10 -all"},
		{"unknown-mechanism", "v=spf1 ip4:1.2.3.4 -all moo"},
		{"modifier-charset-bad1", "v=spf1 moo.cow/far_out=man:dog/cat -all"},
		{"modifier-charset-bad2", "v=spf1 moo.cow:far_out=man:dog/cat -all"},
		{"redirect-is-modifier", "v=spf1 redirect:example.com"},
		{"qualified-modifier", "v=spf1 -redirect=example.com"},
		{"modifier-name-digit", "v=spf1 1up=foo"},
		{"modifier-name-empty", "v=spf1 =all"},
		{"unknown-modifier-bad-macro", "v=spf1 -all foo=%abc"},
		{"redirect-twice", "v=spf1 redirect=a.example.com redirect=b.example.com"},
		{"exp-twice", "v=spf1 exp=a.example.com -all exp=b.example.com"},
		{"exp-empty", "v=spf1 exp= -all"},
		{"exp-bad-domain", "v=spf1 exp=-all"},
		{"redirect-empty", "v=spf1 ?all redirect="},
		{"redirect-bad-domain", "v=spf1 redirect=-all ?all"},
		{"exp-r-macro", "v=spf1 -all exp=%{r}.example.com"},
		{"all-dot", "v=spf1 -all."},
		{"all-arg", "v=spf1 -all:foobar"},
		{"all-cidr", "v=spf1 -all/8"},
		{"bare-qualifier", "v=spf1 -"},
		{"include-bare", "v=spf1 include"},
		{"include-empty", "v=spf1 include: -all"},
		{"include-cidr", "v=spf1 include:example.com/24"},
		{"exists-bare", "v=spf1 exists"},
		{"exists-cidr", "v=spf1 exists:mail.example.com/24"},
		{"ptr-cidr", "v=spf1 ptr/0 -all"},
		{"ptr-empty", "v=spf1 ptr:"},
		{"a-empty", "v=spf1 a:"},
		{"a-no-dot", "v=spf1 a:foo-bar -all"},
		{"a-numeric-toplabel", "v=spf1 a:abc.123"},
		{"a-ip-address", "v=spf1 a:111.222.33.44"},
		{"a-only-toplabel", "v=spf1 a:museum"},
		{"a-only-toplabel-dot", "v=spf1 a:museum."},
		{"a-dash-toplabel", "v=spf1 a:example.-com"},
		{"a-port", "v=spf1 a:example.com:8080"},
		{"a-nul", "v=spf1 a:foo.example.com\x00"},
		{"a-bad-cidr4", "v=spf1 a/33 -all"},
		{"a-bad-cidr6", "v=spf1 a//129 -all"},
		{"a-cidr-single-slash", "v=spf1 a/24/64 -all"},
		{"a-cidr-leading-zero", "v=spf1 a/024"},
		{"mx-empty", "v=spf1 mx: -all"},
		{"ip4-bare", "v=spf1 ip4"},
		{"ip4-short", "v=spf1 ip4:1.2.3"},
		{"ip4-port", "v=spf1 ip4:1.2.3.4:8080"},
		{"ip4-cidr-33", "v=spf1 ip4:1.2.3.4/33"},
		{"ip4-cidr-032", "v=spf1 ip4:1.2.3.4/032"},
		{"ip4-dual-cidr", "v=spf1 ip4:1.2.3.4//32"},
		{"ip4-leading-zero", "v=spf1 ip4:192.0.2.01"},
		{"ip4-ipv6", "v=spf1 ip4:2001:db8::1"},
		{"ip6-bare", "v=spf1 -all ip6"},
		{"ip6-ipv4", "v=spf1 ip6:192.0.2.1"},
		{"ip6-bad", "v=spf1 ip6::CAFE::BABE"},
		{"ip6-cidr-129", "v=spf1 ip6:::1/129"},
		{"ip6-dual-cidr", "v=spf1 ip6:::1//33"},
		{"ip6-zone", "v=spf1 ip6:fe80::1%eth0"},
		{"control-char", "v=spf1 a:ctrl.example.com\rptr -all"},
		{"newline", "v=spf1 ip4:192.0.2.5\n include:example.com ~all"},
		{"tab", "v=spf1\t-all ip4:192.0.2.5\t-all"},
		{"non-ascii-mechanism", "v=spf1 \u0080a:example.net -all"},
		{"non-ascii-domain", "v=spf1 a:\u00ef\u00bb\u00bfgarbage.example.net -all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseRecord(tt.in); !errors.Is(err, ErrSyntax) {
				t.Errorf("parseRecord(%q) = %v, want ErrSyntax", tt.in, err)
			}
		})
	}
}

func TestParseDomainSpec(t *testing.T) {
	t.Parallel()
	for in, ok := range map[string]bool{
		"example.com":             true,
		"example.com.":            true,
		"%{d}":                    true,
		"%{d}.":                   false,
		"%{d}.com":                true,
		"%{d}com":                 false,
		"foo%%":                   true,
		"_spf.%{d2}":              true,
		"foo:bar/baz.example.com": true,
		"example.com..":           false,
		"example.123":             false,
		"example.1-2":             true,
		"example.a-":              false,
		"":                        false,
	} {
		_, err := parseDomainSpec(in)
		if (err == nil) != ok {
			t.Errorf("parseDomainSpec(%q) = %v, want ok=%v", in, err, ok)
		}
	}
}

func TestTargetName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("abcdefghi.", 30) + "example.com" // 311 octets
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"plain", "mail.example.com", "mail.example.com", true},
		{"trailing-dot", "mail.example.com.", "mail.example.com", true},
		{"empty", "", "", false},
		{"root", ".", "", false},
		{"empty-label", "mail.example...com", "", false},
		{"leading-dot", ".example.com", "", false},
		{"label-64", strings.Repeat("a", 64) + ".example.com", "", false},
		{"label-63", strings.Repeat("a", 63) + ".example.com", strings.Repeat("a", 63) + ".example.com", true},
		{"truncated-left", long, long[len(long)-251:], true},
		{"one-huge-label", strings.Repeat("a", 300), "", false},
		{"single-label", "localhost", "localhost", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := targetName(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("targetName(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			if ok && len(got) > maxNameLen {
				t.Errorf("%d octets", len(got))
			}
		})
	}
}

func TestCheckDomain(t *testing.T) {
	t.Parallel()
	for in, ok := range map[string]bool{
		"example.com":                            true,
		"example.com.":                           true,
		"_spf.example.com":                       true,
		"xn--bcher-kva.example":                  true,
		"A2345678":                               false,
		"[1.2.3.5]":                              false,
		"192.0.2.1":                              false,
		"A...example.com":                        false,
		"":                                       false,
		".":                                      false,
		"JUMPIN' JUPITER":                        false,
		"bücher.example":                         true, // RFC 8616 §4: as its A-labels
		"BÜCHER.example.":                        true,
		"b\xfccher.example":                      false,
		"xn--abc.example":                        false,
		"a.b\x00":                                false,
		strings.Repeat("a", 64) + ".example.com": false,
		strings.Repeat("a", 63) + ".example.com": true,
		strings.Repeat("a.", 127) + "com":        false, // 257 octets
		strings.Repeat("a.", 125) + "com":        true,  // 253 octets
	} {
		_, err := checkDomain(in)
		if (err == nil) != ok {
			t.Errorf("checkDomain(%q) = %v, want ok=%v", in, err, ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidDomain) {
			t.Errorf("checkDomain(%q) = %v, want ErrInvalidDomain", in, err)
		}
	}
}

func TestIsSubdomain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, parent string
		want         bool
	}{
		{"mail.example.com", "example.com", true},
		{"mail.Example.com.", "example.COM", true},
		{"example.com", "example.com", true},
		{"badexample.com", "example.com", false},
		{"com", "example.com", false},
	}
	for _, tt := range tests {
		if got := isSubdomain(tt.name, tt.parent); got != tt.want {
			t.Errorf("isSubdomain(%q, %q) = %v", tt.name, tt.parent, got)
		}
	}
}
