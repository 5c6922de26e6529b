package authres

import (
	"reflect"
	"testing"

	"github.com/authmilter/authmilter/verify"
)

// FuzzParse: Parse and AuthServID never panic, agree on the authserv-id,
// and whatever Parse accepts formats to a field that parses back to what
// Format kept (the round trip of Format's output).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"example.org 1; none",
		"example.com;\r\n spf=pass smtp.mailfrom=example.net",
		"foo.example.net (foobar) 1 (baz);\r\n dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n policy (A dot can go here) . (like that) expired\r\n (this surprised me) = (as I wasn't expecting it) 1362471462",
		`"mx"; dkim=pass reason="a \"b\"" header.b="ab/cd" header.i=@example.com`,
		"mx; spf=pass smtp.mailfrom=\"john doe\"@example.com; dmarc=none action=none",
		"(((", "\"", "mx; a=b c.d", "mx;;;", "mx 1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, idErr := AuthServID(s)
		h, err := Parse(s)
		if err != nil {
			return
		}
		if idErr != nil || id != h.AuthServID {
			t.Fatalf("AuthServID = %q, %v; Parse found %q", id, idErr, h.AuthServID)
		}
		out := Format(h.AuthServID, h.Results)
		if err := checkFieldText(out, 998); err != nil {
			t.Fatal(err)
		}
		h2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Format(Parse(%q))) = %v\n%q", s, err, out)
		}
		if h2.AuthServID != keptValue(h.AuthServID) {
			t.Fatalf("authserv-id %q, want %q", h2.AuthServID, keptValue(h.AuthServID))
		}
		if want := normalise(h.Results); !equalResults(h2.Results, want) {
			t.Fatalf("round trip of %q:\n%+v\nwant\n%+v", out, h2.Results, want)
		}
		if again := Format(h2.AuthServID, h2.Results); again != out {
			t.Fatalf("Format not stable:\n%q\n%q", again, out)
		}
	})
}

// FuzzFormat: whatever the strings, the output has no line break but
// CRLF+WSP folding, no control character, no line over 998 octets; it
// parses, with the structure given, back to what Format kept.
func FuzzFormat(f *testing.F) {
	f.Add("mx.example.org", "spf", "pass", "reason", "comment", "smtp", "mailfrom", "a@example.com")
	f.Add("a\r\nb", "dkim", "fail", "x\r\nX-Evil: 1", "a) (b", "header", "d", "\"; dkim=pass")
	f.Add("", "", "", "", "", "", "", "")
	f.Add("\\", "arc", "none", "\\", "\\", "policy", "x", "\xff\x00")
	f.Fuzz(func(t *testing.T, id, method, value, reason, comment, ptype, name, pval string) {
		rs := []Result{
			{Method: method, Value: verify.Status(value), Reason: reason, Comment: comment,
				Props: []Property{{ptype, name, pval}, {"header", "from", pval}}},
			{Method: "spf", Value: verify.StatusPass, Comment: pval, Props: []Property{{"smtp", "helo", id}}},
		}
		out := Format(id, rs)
		if err := checkFieldText(out, 998); err != nil {
			t.Fatal(err)
		}
		if err := checkFieldText(FormatResults(rs), 1<<20); err != nil {
			t.Fatal(err)
		}
		h, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q): %v", out, err)
		}
		if h.AuthServID != keptValue(id) {
			t.Fatalf("authserv-id %q, want %q", h.AuthServID, keptValue(id))
		}
		if got, _ := AuthServID(out); got != h.AuthServID {
			t.Fatalf("AuthServID %q, Parse %q", got, h.AuthServID)
		}
		if want := normalise(rs); !equalResults(h.Results, want) {
			t.Fatalf("round trip of %q:\n%+v\nwant\n%+v", out, h.Results, want)
		}
	})
}

// equalResults compares results, treating nil and empty Props alike.
func equalResults(a, b []Result) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if len(x.Props) == 0 && len(y.Props) == 0 {
			x.Props, y.Props = nil, nil
		}
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}
