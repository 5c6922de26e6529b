package arc

import (
	"strings"
	"testing"

	"github.com/authmilter/authmilter/internal/canon"
	"github.com/authmilter/authmilter/internal/message"
)

// FuzzParseHeaders feeds arbitrary values to the three ARC header parsers
// and to the chain collector. They must never panic, and what they accept
// must be consistent (instances within range, b= removable).
func FuzzParseHeaders(f *testing.F) {
	f.Add("i=1; a=rsa-sha256; b=AAAA; bh=AAAA; c=relaxed/relaxed; d=example.org; h=from:to; s=sel; t=12345")
	f.Add("i=2; a=ed25519-sha256; b=AA==; cv=pass; d=example.org; s=sel; t=1")
	f.Add("i=1; mx.example.org; spf=pass smtp.mailfrom=example.org")
	f.Add(" i = 50 ;\r\n\tb=\r\n AA;;")
	f.Add("i=1; a=rsa-sha256; b=A A\r\n ==; l=10; h=from::subject; d=x; s=y; bh=AA")
	f.Fuzz(func(t *testing.T, value string) {
		for _, name := range []string{HeaderAAR, HeaderAMS, HeaderSeal} {
			fld := message.Field{Name: name, Raw: []byte(name + ":" + value + "\r\n")}
			switch name {
			case HeaderAAR:
				if a, err := parseAAR(fld, maxInstanceLimit); err == nil && (a.instance < 1 || a.instance > maxInstanceLimit) {
					t.Fatalf("AAR instance %d accepted", a.instance)
				}
			case HeaderAMS:
				if m, err := parseAMS(fld, maxInstanceLimit); err == nil {
					if m.instance < 1 || m.instance > maxInstanceLimit || len(m.headers) == 0 {
						t.Fatalf("AMS accepted with i=%d h=%v", m.instance, m.headers)
					}
				}
			case HeaderSeal:
				if s, err := parseSeal(fld, maxInstanceLimit); err == nil && s.cv != "none" && s.cv != "pass" && s.cv != "fail" {
					t.Fatalf("seal accepted with cv=%q", s.cv)
				}
			}
			stripped := canon.StripSignature(fld.Raw)
			if len(stripped) > len(fld.Raw) || !strings.HasPrefix(string(stripped), name+":") {
				t.Fatalf("StripSignature grew or lost the name: %q", stripped)
			}
		}
		var v Validator
		hdr := []message.Field{
			{Name: HeaderSeal, Raw: []byte(HeaderSeal + ":" + value + "\r\n")},
			{Name: HeaderAMS, Raw: []byte(HeaderAMS + ":" + value + "\r\n")},
			{Name: HeaderAAR, Raw: []byte(HeaderAAR + ":" + value + "\r\n")},
		}
		if v.collect(hdr, maxInstanceLimit) == nil {
			_ = v.checkStructure()
		}
		_ = highestInstance(hdr)
	})
}
