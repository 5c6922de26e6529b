package spf

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// rfcEnv is the setting of the RFC 7208 §7.4 examples.
func rfcEnv(ip string) *macroEnv {
	return &macroEnv{
		sender:   "strong-bad@email.example.com",
		local:    "strong-bad",
		origin:   "email.example.com",
		domain:   "email.example.com",
		helo:     "mx.example.org",
		receiver: "mx.receiver.example.net",
		ip:       netip.MustParseAddr(ip),
		now:      func() time.Time { return time.Unix(1700000000, 0) },
		ptr:      func() string { return "mx.example.org" },
	}
}

func expandString(t *testing.T, s string, mode macroMode, env *macroEnv) string {
	t.Helper()
	ms, _, err := parseMacroString(s, mode)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	out, err := ms.expand(env)
	if err != nil {
		t.Fatalf("expand %q: %v", s, err)
	}
	return out
}

func TestExpandRFC7208Section7_4(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ip, in, want string
	}{
		{"s", "192.0.2.3", "%{s}", "strong-bad@email.example.com"},
		{"o", "192.0.2.3", "%{o}", "email.example.com"},
		{"d", "192.0.2.3", "%{d}", "email.example.com"},
		{"d4", "192.0.2.3", "%{d4}", "email.example.com"},
		{"d3", "192.0.2.3", "%{d3}", "email.example.com"},
		{"d2", "192.0.2.3", "%{d2}", "example.com"},
		{"d1", "192.0.2.3", "%{d1}", "com"},
		{"dr", "192.0.2.3", "%{dr}", "com.example.email"},
		{"d2r", "192.0.2.3", "%{d2r}", "example.email"},
		{"l", "192.0.2.3", "%{l}", "strong-bad"},
		{"l-", "192.0.2.3", "%{l-}", "strong.bad"},
		{"lr", "192.0.2.3", "%{lr}", "strong-bad"},
		{"lr-", "192.0.2.3", "%{lr-}", "bad.strong"},
		{"l1r-", "192.0.2.3", "%{l1r-}", "strong"},
		{"ir.v._spf.d2", "192.0.2.3", "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
		{"lr-.lp._spf.d2", "192.0.2.3", "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
		{"lr-.lp.ir.v._spf.d2", "192.0.2.3", "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
		{"ir.v.l1r-.lp._spf.d2", "192.0.2.3", "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
		{"d2.trusted-domains", "192.0.2.3", "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
		{"ipv6 ir.v._spf.d2", "2001:db8::cb01", "%{ir}.%{v}._spf.%{d2}",
			"1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := expandString(t, tt.in, modeDomain, rfcEnv(tt.ip)); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestExpandMacros(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ip, in, want string
		mode               macroMode
	}{
		{"escapes", "192.0.2.3", "%%%_%-", "% %20", modeDomain},
		{"upper-case-escapes", "192.0.2.3", "%{L}", "strong-bad", modeDomain},
		{"upper-case-url-escape", "192.0.2.3", "%{S}", "strong-bad%40email.example.com", modeDomain},
		{"upper-case-after-transform", "192.0.2.3", "%{L1R-}", "strong", modeDomain},
		{"transform-upper-R", "192.0.2.3", "%{dR}", "com.example.email", modeDomain},
		{"digits-over-parts", "192.0.2.3", "%{d99}", "email.example.com", modeDomain},
		{"huge-digits", "192.0.2.3", "%{d99999999999999999999999}", "email.example.com", modeDomain},
		{"leading-zero-digits", "192.0.2.3", "%{d02}", "example.com", modeDomain},
		{"multiple-delimiters", "192.0.2.3", "%{l-.}", "strong.bad", modeDomain},
		{"all-delimiters", "192.0.2.3", "%{dr.-+,/_=}", "com.example.email", modeDomain},
		{"h", "192.0.2.3", "%{h}", "mx.example.org", modeDomain},
		{"p", "192.0.2.3", "%{p}", "mx.example.org", modeDomain},
		{"i-ipv4", "192.0.2.3", "%{i}", "192.0.2.3", modeDomain},
		{"v-ipv6", "2001:db8::cb01", "%{v}", "ip6", modeDomain},
		{"c-ipv4", "192.0.2.3", "%{c}", "192.0.2.3", modeExplain},
		{"c-ipv6", "2001:db8::cb01", "%{c}", "2001:db8::cb01", modeExplain},
		{"r", "192.0.2.3", "%{r}", "mx.receiver.example.net", modeExplain},
		{"t", "192.0.2.3", "%{t}", "1700000000", modeExplain},
		{"explain-spaces", "192.0.2.3", "%{c} is not  allowed", "192.0.2.3 is not  allowed", modeExplain},
		{"empty", "192.0.2.3", "", "", modeDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := expandString(t, tt.in, tt.mode, rfcEnv(tt.ip)); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestExpandDefaults(t *testing.T) {
	t.Parallel()
	env := rfcEnv("192.0.2.3")
	env.receiver, env.ptr = "", nil
	if got := expandString(t, "%{r} %{p}", modeExplain, env); got != "unknown unknown" {
		t.Errorf("got %q, want %q", got, "unknown unknown")
	}
}

func TestParseMacroStringErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		mode     macroMode
	}{
		{"percent-at-end", "foo%", modeDomain},
		{"percent-letter", "%a", modeDomain},
		{"percent-paren", "%(ir).sbl.example.com", modeDomain},
		{"percent-dot", "foo%.sbl.example.com", modeDomain},
		{"unterminated", "%{d", modeDomain},
		{"open-brace-only", "%{", modeDomain},
		{"unknown-letter", "%{a}.example.com", modeDomain},
		{"zero-digit", "%{d0}", modeDomain},
		{"zero-digits", "%{d00}", modeDomain},
		{"r-before-digits", "%{dr2}", modeDomain},
		{"bad-delimiter", "%{d:}", modeDomain},
		{"c-in-domain", "%{c}.example.com", modeDomain},
		{"r-in-domain", "%{r}.example.com", modeDomain},
		{"t-in-domain", "%{t}.example.com", modeDomain},
		{"space-in-domain", "a b.example.com", modeDomain},
		{"space-in-modifier", "a b", modeModifier},
		{"control-char", "a\rb", modeExplain},
		{"non-ascii", "\u00efexplanation", modeExplain},
		{"nul", "foo\x00", modeDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := parseMacroString(tt.in, tt.mode); !errors.Is(err, ErrSyntax) {
				t.Errorf("parseMacroString(%q) = %v, want ErrSyntax", tt.in, err)
			}
		})
	}
}

func TestExpandTooLong(t *testing.T) {
	t.Parallel()
	env := rfcEnv("192.0.2.3")
	env.sender = strings.Repeat("x", 1000) + "@example.com"
	ms, _, err := parseMacroString(strings.Repeat("%{s}", 20), modeDomain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ms.expand(env); err == nil {
		t.Error("expansion of over 8192 octets succeeded")
	}
}

func TestDotIP(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"192.0.2.3":      "192.0.2.3",
		"2001:db8::cb01": "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1",
		"::":             "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0",
	} {
		if got := dotIP(netip.MustParseAddr(in)); got != want {
			t.Errorf("dotIP(%s) = %q, want %q", in, got, want)
		}
	}
}
