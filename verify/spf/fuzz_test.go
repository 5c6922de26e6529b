package spf

import (
	"context"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify"
)

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=spf1",
		"v=spf1 -all",
		"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx ptr -all",
		"v=spf1 a:%{d}/24//64 mx:example.com//0 exists:%{ir}.%{v}._spf.%{d2} ~all",
		"v=spf1 include:_spf.example.com redirect=%{d}.d.spf.example.com. exp=exp.%{d}",
		"v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all",
		"v=spf1 a:foo:bar/baz.example.com",
		"v=spf1 -exists:%(ir).sbl.example.com ?all",
		"v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all",
		"V=SPF1 +ALL",
		"v=spf1 ip4:1.2.3.4//32 a/24/64 ip6::CAFE::BABE",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := parseRecord(txt)
		if err != nil {
			return
		}
		for _, d := range rec.directives {
			if d.text == "" || d.kind == 0 || !d.result.Valid() {
				t.Fatalf("bad directive %+v from %q", d, txt)
			}
			if strings.ContainsRune(d.text, ' ') {
				t.Fatalf("directive %q contains a space", d.text)
			}
		}
		// Evaluate it too: any record gives a defined result.
		z := &dnstest.Resolver{
			TXT: map[string][]string{"example.com": {txt}},
			A:   map[string][]string{"example.com": {"192.0.2.1"}},
		}
		res := VerifyWithOptions(context.Background(), z, fuzzArgs(), nil)
		switch res.Status {
		case verify.StatusPass, verify.StatusFail, verify.StatusSoftfail, verify.StatusNeutral,
			verify.StatusTemperror, verify.StatusPermerror:
		default:
			t.Fatalf("result %q for %q", res.Status, txt)
		}
		if res.Lookups > 10 || res.VoidLookups > 3 {
			t.Fatalf("lookups %d, void %d for %q", res.Lookups, res.VoidLookups, txt)
		}
	})
}

func fuzzArgs() Args {
	local, domain := SplitSender("strong-bad@example.com")
	return Args{IP: rfcEnv("192.0.2.3").ip, MailFromLocal: local, MailFromDomain: domain, HELO: "mail.example.com"}
}

func FuzzExpandMacro(f *testing.F) {
	for _, s := range []string{
		"%{s}", "%{o}", "%{d4}", "%{d2r}", "%{l-}", "%{lr-}", "%{l1r-}",
		"%{ir}.%{v}._spf.%{d2}", "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
		"%%%_%-", "%{L}", "%{S}", "%{p}", "%{c} %{r} %{t}", "%{d0}", "%{dr2}", "%{d999999999999999}",
		"http://example.com/why.html?l=%{L}", "%{ir}.%{v}.arpa", "%{i}.%{l2r+-}.user.%{d2}",
	} {
		f.Add(s, uint8(modeDomain))
		f.Add(s, uint8(modeExplain))
	}
	f.Fuzz(func(t *testing.T, s string, mode uint8) {
		m := macroMode(mode % 3)
		ms, _, err := parseMacroString(s, m)
		if err != nil {
			return
		}
		env := rfcEnv("2001:db8::cb01")
		env.local = "first.last-name+tag"
		env.sender = env.local + "@email.example.com"
		out, err := ms.expand(env)
		if err != nil {
			if len(s) < 100 {
				t.Fatalf("expand(%q): %v", s, err)
			}
			return
		}
		if len(out) > maxExpansion+1024 {
			t.Fatalf("expansion of %d octets", len(out))
		}
		if !strings.Contains(s, "%") && out != s {
			t.Fatalf("literal %q expanded to %q", s, out)
		}
		if m == modeDomain {
			// Whatever the expansion, turning it into a name must not panic
			// and must respect the length limits.
			if name, ok := targetName(out); ok && len(name) > maxNameLen {
				t.Fatalf("name of %d octets", len(name))
			}
		}
	})
}
