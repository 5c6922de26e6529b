package audit

import (
	"strings"
	"testing"
)

// The parsers of this package read text from the DNS and the web: no input
// may panic them, and what they accept must satisfy their grammar.

func FuzzParseSTSPolicy(f *testing.F) {
	f.Add(policy("enforce", 604800, "mx.example.com", "*.example.net"))
	f.Add("version: STSv1\nmode: none\nmax_age: 0\n")
	f.Add("version: STSv1\nmode: testing\nmx: a.example\nmax_age: 99999999999\n")
	f.Add("\xff: \x00\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParseSTSPolicy(text)
		if err != nil {
			return
		}
		if p.MaxAge < 0 || p.MaxAge > maxSTSMaxAge {
			t.Errorf("max_age %d accepted", p.MaxAge)
		}
		if p.Mode != STSEnforce && p.Mode != STSTesting && p.Mode != STSNone {
			t.Errorf("mode %q accepted", p.Mode)
		}
		if p.Mode != STSNone && len(p.MX) == 0 {
			t.Error("policy without mx accepted")
		}
		for _, m := range p.MX {
			if !validMXPattern(m) {
				t.Errorf("mx %q accepted", m)
			}
			p.Matches(m)
		}
	})
}

func FuzzParseSTSRecord(f *testing.F) {
	f.Add("v=STSv1; id=20160831085700Z;")
	f.Add("v=STSv1;id=")
	f.Add("v=STSv1; id=1; ext=2")
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := ParseSTSRecord(txt)
		if err != nil {
			return
		}
		if !IsSTSRecord(txt) || len(rec.ID) < 1 || len(rec.ID) > 32 {
			t.Errorf("%q accepted with id %q", txt, rec.ID)
		}
	})
}

func FuzzParseTLSRPTRecord(f *testing.F) {
	f.Add("v=TLSRPTv1; rua=mailto:tls@example.com")
	f.Add("v=TLSRPTv1;rua=mailto:a@example.com,https://r.example.net/x")
	f.Add("v=TLSRPTv1; rua=mailto:%zz")
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := ParseTLSRPTRecord(txt)
		if err != nil {
			return
		}
		if len(rec.RUA) == 0 {
			t.Errorf("%q accepted without URIs", txt)
		}
		for _, u := range rec.RUA {
			if !strings.HasPrefix(strings.ToLower(u), "mailto:") && !strings.HasPrefix(strings.ToLower(u), "https:") {
				t.Errorf("%q accepted with URI %q", txt, u)
			}
		}
	})
}

func FuzzParseBIMIRecord(f *testing.F) {
	f.Add("v=BIMI1; l=https://example.com/logo.svg; a=https://example.com/vmc.pem")
	f.Add("v=BIMI1; l=;")
	f.Add("v=BIMI1; l=http://x")
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := ParseBIMIRecord(txt)
		if err != nil {
			return
		}
		for _, u := range []string{rec.Location, rec.Authority} {
			if u != "" && !strings.HasPrefix(strings.ToLower(u), "https://") {
				t.Errorf("%q accepted with URI %q", txt, u)
			}
		}
	})
}
