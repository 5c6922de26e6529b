package dkim

import (
	"strings"
	"testing"
	"time"
)

func FuzzParseSignature(f *testing.F) {
	for _, seed := range []string{
		" v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;\r\n\th=From:To; bh=abc=; b=ab\r\n\t cd",
		"v=1; a=ed25519-sha256; d=example.com; s=s; h=from; bh=x; b=y; t=1; x=2; l=10; i=@example.com",
		"v=1; v=1",
		"",
		";;",
		"a=\r\n",
		"v=1; a=rsa-sha256; d=example.com; s=sel; h=From; bh=x; b=y; x=-1",
		"i=foo@bar=2Ebaz; d=\x80",
		"v=1; a=rsa-sha256; c=relaxed/bogus; d=Example.COM; s=s; h=To : from; bh=x; b=y; i=@sub.example.com; q=dns/txt:x/y",
		"v=1; a=rsa-sha256; d=example.com; s=s; h=to; bh=x; b=y; i=example.com; q=other",
		"v=1; a=rsa-sha256; d=Bücher.example; s=sél; h=from; bh=x; b=y; i=info@mx.bücher.example",
		"v=1; a=rsa-sha256; d=xn--bcher-kva.example; s=s; h=from; bh=x; b=y; i=@b\xfccher.example",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		st, err := parseSignature(value)
		if st == nil {
			t.Fatal("nil result")
		}
		if err == nil {
			if st.domain == "" || st.selector == "" || st.b == "" {
				t.Errorf("accepted without d=, s= or b=: %q", value)
			}
			if st.name.IsZero() {
				t.Errorf("accepted without a parsed d=: %q", value)
			}
			if strings.ContainsAny(st.b, " \t\r\n") {
				t.Errorf("b= keeps whitespace: %q", st.b)
			}
		}
		// The helpers must cope with whatever was parsed.
		st.expired(time.Unix(0, 0))
		st.algorithms()
		if err == nil {
			st.checkSignature()
		}
		var s Signature
		st.fill(&s)
	})
}
