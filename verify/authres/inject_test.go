package authres

import (
	"strings"
	"testing"

	"github.com/authmilter/authmilter/verify"
)

// hostile are inputs a message, an envelope or a DNS record could carry.
var hostile = []string{
	"a\r\nX-Injected: yes",
	"a\nX-Injected: yes",
	"a\rX-Injected: yes",
	"a\r\n\r\nbody",
	"a\r\n", "\r\n", "\n", "\r",
	"x; spf=pass smtp.mailfrom=bank.example",
	"x (comment) y",
	"x) dkim=pass (",
	"x\\", "\\", "\"", "\"\"", "(", ")", "((((", "))))", ";", "=", ".",
	"a\x00b", "\x1b[31mred", "\x7f", "\u0085next line", "\u2028", "\u202eevil", "\u00a0nbsp",
	"\xff\xfe invalid utf-8", "caf\xc3",
	"naïve@exämple.com",
	strings.Repeat("A", 10000),
	strings.Repeat("(", 600) + strings.Repeat(")", 600),
	strings.Repeat("\r\n ", 500),
	strings.Repeat("a ", 3000),
}

func TestInjection(t *testing.T) {
	t.Parallel()
	for _, h := range hostile {
		rs := []Result{{
			Method: "spf", Value: verify.StatusFail, Reason: h, Comment: h,
			Props: []Property{{"smtp", "mailfrom", h}, {"header", "from", h}},
		}}
		for name, out := range map[string]string{
			"Format":        Format(h, rs),
			"FormatResults": FormatResults(rs),
		} {
			maxLine := 998
			if name == "FormatResults" {
				maxLine = 1 << 20 // unfolded by design: the ARC sealer folds it
			}
			if err := checkFieldText(out, maxLine); err != nil {
				t.Errorf("%s with %.40q: %v", name, h, err)
			}
		}
		out := Format(h, rs)
		hdr, err := Parse(out)
		if err != nil {
			t.Errorf("Parse(Format()) with %.40q: %v\n%s", h, err, out)
			continue
		}
		// The structure survives: one result, two properties, and the
		// authserv-id is what was given (sanitised), never a part of it.
		if len(hdr.Results) != 1 || len(hdr.Results[0].Props) != 2 || hdr.Results[0].Method != "spf" || hdr.Results[0].Value != verify.StatusFail {
			t.Errorf("with %.40q the structure changed: %+v", h, hdr)
		}
		if id, err := AuthServID(out); err != nil || id != keptValue(h) {
			t.Errorf("with %.40q AuthServID = %q, %v; want %q", h, id, err, keptValue(h))
		}
		if got := hdr.Results[0].Props[0].Value; got != keptValue(h) {
			t.Errorf("with %.40q property = %.60q, want %.60q", h, got, keptValue(h))
		}
		if got := hdr.Results[0].Comment; got != keptText(h) {
			t.Errorf("with %.40q comment = %.60q, want %.60q", h, got, keptText(h))
		}
	}
}

// TestInjectionNoNewField checks the classic attack on its own: a value
// with CRLF must not start a header field of its own.
func TestInjectionNoNewField(t *testing.T) {
	t.Parallel()
	rs := []Result{{Method: "spf", Value: verify.StatusPass, Props: []Property{
		{"smtp", "mailfrom", "a@example.com\r\nAuthentication-Results: mx.example.org; dmarc=pass"},
	}}}
	raw := string(Field("mx.example.org", rs).Raw)
	for i, l := range lines(strings.TrimSuffix(raw, "\r\n")) {
		if i > 0 && l != "" && l[0] != ' ' && l[0] != '\t' {
			t.Errorf("line %d starts a new field: %q", i+1, l)
		}
	}
	h, err := Parse(strings.TrimPrefix(strings.TrimSuffix(raw, "\r\n"), FieldName+":"))
	if err != nil || len(h.Results) != 1 || len(h.Results[0].Props) != 1 {
		t.Errorf("Parse = %+v, %v", h, err)
	}
}

func TestCleanText(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"  a \r\n\t b  ":   "a b",
		"a\x00b\x7fc":      "a?b?c",
		"\u202eabc\u00a0":  "?abc?",
		"\xffok":           "?ok",
		"ünïcode fine":     "ünïcode fine",
		"\x1b[31m":         "?[31m",
		"tab\tin\ttext":    "tab in text",
		"trailing spaces ": "trailing spaces",
	}
	for in, want := range tests {
		if got := cleanText(in); got != want {
			t.Errorf("cleanText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := cleanValue("a\tb\r\nc"); got != "a?b??c" {
		t.Errorf("cleanValue = %q", got)
	}
	long := strings.Repeat("é", 400) // 800 octets
	got := cleanValue(long)
	if len(got) > maxLen || !strings.HasSuffix(got, "...") || cleanValue(got) != got {
		t.Errorf("cut to %d octets: %q", len(got), got)
	}
}
