package authres

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/verify"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenCases are formatted to testdata/<name>.golden (the full field, as
// Field writes it).
var goldenCases = []struct {
	name    string
	id      string
	results []Result
}{
	{"none", "mx.example.org", nil},
	// What the engine writes for an SPF pass, an SPF HELO permerror and a
	// DMARC fail lowered by t=y.
	{"spf_pass", "mx.example.org", []Result{{Method: "spf", Value: verify.StatusPass,
		Reason:  "mechanism ip4:192.0.2.0/24 matched",
		Comment: "domain of user@example.com designates 192.0.2.1 as permitted sender",
		Props:   []Property{{"smtp", "mailfrom", "user@example.com"}}}}},
	{"spf_helo_permerror", "mx.example.org", []Result{{Method: "spf", Value: verify.StatusPermerror,
		Reason:  "too many DNS-querying terms (at include:_spf.example.net)",
		Comment: "permanent error in processing during lookup of mail.example.com",
		Props:   []Property{{"smtp", "helo", "mail.example.com"}}}}},
	{"dmarc_fail_testing", "mx.example.org", []Result{{Method: "dmarc", Value: verify.StatusFail,
		Reason:  "no aligned SPF or DKIM pass for example.com",
		Comment: "sp=reject dis=quarantine, lowered by t=y",
		Props:   []Property{{"header", "from", "example.com"}, {"policy", "dmarc", "reject"}}}}},
	{"full", "mx.example.org", []Result{
		{Method: "spf", Value: verify.StatusSoftfail, Reason: "mechanism ~all matched",
			Comment: "domain of transitioning SRS0=abcd=XY=example.com=user@forwarder.example does not designate 198.51.100.7 as permitted sender",
			Props:   []Property{{"smtp", "mailfrom", "SRS0=abcd=XY=example.com=user@forwarder.example"}}},
		{Method: "dkim", Value: verify.StatusPass, Comment: "2048-bit rsa key", Props: []Property{
			{"header", "d", "example.com"}, {"header", "s", "sel2026"}, {"header", "a", "rsa-sha256"},
			{"header", "b", HeaderB("dGhpcyBpcyBub3QgYSBzaWduYXR1cmU=", nil)},
		}},
		{Method: "dkim", Value: verify.StatusFail, Reason: "signature did not verify", Props: []Property{
			{"header", "d", "example.net"}, {"header", "i", "@example.net"},
		}},
		{Method: "dmarc", Value: verify.StatusPass, Reason: "DKIM d=example.com aligned", Comment: "p=none",
			Props: []Property{{"header", "from", "example.com"}, {"policy", "dmarc", "none"}}},
		{Method: "arc", Value: verify.StatusNone},
		{Method: "iprev", Value: verify.StatusPass, Props: []Property{{"policy", "iprev", "198.51.100.7"}}},
	}},
	{"hostile", "mx.example.org", []Result{{
		Method: "spf", Value: verify.StatusFail,
		Reason:  "x\r\nX-Injected: yes",
		Comment: "a) b (c\\",
		Props: []Property{
			{"smtp", "mailfrom", "\"evil; spf=pass\"@example.com\r\n\tdkim=pass"},
			{"smtp", "helo", "helo(x)"},
		},
	}}},
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := string(Field(tc.id, tc.results).Raw)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Field() =\n%s\nwant\n%s", got, want)
			}
			value := strings.TrimSuffix(strings.TrimPrefix(got, "Authentication-Results: "), "\r\n")
			if err := checkFieldText(value, 998); err != nil {
				t.Error(err)
			}
			for i, l := range lines(got) {
				cols := len(strings.Replace(l, "\t", "        ", 1))
				if cols > lineLimit && !strings.Contains(strings.TrimSpace(l), " ") {
					continue // one word longer than a line
				}
				if cols > lineLimit {
					t.Errorf("line %d has %d columns: %q", i+1, cols, l)
				}
			}
		})
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		results []Result
		want    string
	}{
		{"none", nil, "example.com; none"},
		{"only invalid", []Result{{Method: "bad method", Value: verify.StatusPass}}, "example.com; none"},
		{"zero value is none", []Result{{Method: "dkim"}}, "example.com;\r\n\tdkim=none"},
		{"lower case", []Result{{Method: "DKIM", Value: "Pass", Props: []Property{{"Header", "D", "Example.COM"}}}},
			"example.com;\r\n\tdkim=pass header.d=Example.COM"},
		{"invalid property skipped", []Result{{Method: "spf", Value: verify.StatusPass, Props: []Property{{"smtp", "mail from", "x"}, {"", "action", "none"}, {"smtp", "mailfrom", "a@example.com"}}}},
			"example.com;\r\n\tspf=pass smtp.mailfrom=a@example.com"},
		{"quoting", []Result{{Method: "x", Value: verify.StatusPass, Props: []Property{
			{"a", "token", "abc.def_1"},
			{"a", "addr", "first.last+tag@example.com"},
			{"a", "at", "@example.com"},
			{"a", "slash", "abc/def"},
			{"a", "space", "a b"},
			{"a", "empty", ""},
			{"a", "quote", `say "hi" \o/`},
			{"a", "nonascii", "bjørn@example.com"},
		}}}, "example.com;\r\n\tx=pass a.token=abc.def_1 a.addr=first.last+tag@example.com\r\n\t" +
			`a.at=@example.com a.slash="abc/def" a.space="a b" a.empty=""` + "\r\n\t" +
			`a.quote="say \"hi\" \\o/" a.nonascii="bjørn@example.com"`},
		{"reason token", []Result{{Method: "compauth", Value: verify.StatusPass, Reason: "100"}},
			"example.com;\r\n\tcompauth=pass reason=100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Format("example.com", tc.results); got != tc.want {
				t.Errorf("Format() =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestFormatAuthServID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]string{
		"mx.example.org":     "mx.example.org; none",
		"":                   `""; none`,
		"mx example":         `"mx example"; none`,
		"mx;evil":            `"mx;evil"; none`,
		"mx.example\r\nX: y": `"mx.example??X: y"; none`,
	} {
		if got := Format(id, nil); got != want {
			t.Errorf("Format(%q, nil) = %q, want %q", id, got, want)
		}
	}
}

func TestFormatResults(t *testing.T) {
	t.Parallel()
	if got := FormatResults(nil); got != "none" {
		t.Errorf("FormatResults(nil) = %q, want none", got)
	}
	rs := []Result{
		{Method: "spf", Value: verify.StatusPass, Comment: "a long comment that would be folded in an Authentication-Results field", Props: []Property{{"smtp", "mailfrom", "a@example.com"}}},
		{Method: "arc", Value: verify.StatusNone},
	}
	want := "spf=pass (a long comment that would be folded in an Authentication-Results field) smtp.mailfrom=a@example.com; arc=none"
	if got := FormatResults(rs); got != want {
		t.Errorf("FormatResults() =\n%q\nwant\n%q", got, want)
	}
}

func TestField(t *testing.T) {
	t.Parallel()
	f := Field("mx.example.org", nil)
	if f.Name != "Authentication-Results" || string(f.Raw) != "Authentication-Results: mx.example.org; none\r\n" {
		t.Errorf("Field() = %q %q", f.Name, f.Raw)
	}
	if f.Value() != " mx.example.org; none" {
		t.Errorf("Field().Value() = %q", f.Value())
	}
}

func TestFormatLongValues(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 5000)
	got := Format(strings.Repeat("b", 2000), []Result{{
		Method: "spf", Value: verify.StatusPass,
		Reason: long, Comment: strings.Repeat("word ", 1000),
		Props: []Property{{"smtp", "mailfrom", long + "@example.com"}, {"header", "b", "é" + long}},
	}})
	if err := checkFieldText(got, 998); err != nil {
		t.Fatal(err)
	}
	h, err := Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h.AuthServID); n > maxLen {
		t.Errorf("authserv-id of %d octets", n)
	}
	r := h.Results[0]
	for _, s := range []string{r.Reason, r.Comment, r.Props[0].Value, r.Props[1].Value} {
		if len(s) > maxLen || !strings.HasSuffix(s, "...") {
			t.Errorf("value of %d octets, not cut: %.40q...", len(s), s)
		}
	}
	if !strings.HasPrefix(r.Props[1].Value, "é") {
		t.Errorf("cut lost the leading character")
	}
}
