package authres

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/verify"
)

func TestParseTolerant(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value string
		want  Header
	}{
		{"bare LF folding (milter)", " mx.example.org;\n\tspf=pass\n smtp.mailfrom=a@example.com",
			Header{AuthServID: "mx.example.org", Results: []Result{{Method: "spf", Value: "pass", Props: []Property{{"smtp", "mailfrom", "a@example.com"}}}}}},
		{"odd case", "MX.Example.ORG; SPF=PASS SMTP.MailFrom=A@Example.COM; DKIM = Fail Reason = \"Bad\" HEADER.D=Example.COM",
			Header{AuthServID: "MX.Example.ORG", Results: []Result{
				{Method: "spf", Value: "pass", Props: []Property{{"smtp", "mailfrom", "A@Example.COM"}}},
				{Method: "dkim", Value: "fail", Reason: "Bad", Props: []Property{{"header", "d", "Example.COM"}}},
			}}},
		{"nested comments with escapes", `mx (a (b \) c) d) ; spf=pass (x \(y\) (z)) smtp.helo=h.example`,
			Header{AuthServID: "mx", Results: []Result{{Method: "spf", Value: "pass", Comment: "x (y) (z)", Props: []Property{{"smtp", "helo", "h.example"}}}}}},
		{"quoted values", `"mx.example.org"; dkim=pass header.b="ab/c\"d" reason="x;y (z)"`,
			Header{AuthServID: "mx.example.org", Results: []Result{{Method: "dkim", Value: "pass", Reason: "x;y (z)", Props: []Property{{"header", "b", `ab/c"d`}}}}}},
		{"folded quoted-string", "mx; dkim=fail reason=\"bad\r\n signature\"",
			Header{AuthServID: "mx", Results: []Result{{Method: "dkim", Value: "fail", Reason: "bad signature"}}}},
		{"quoted local-part", `mx; smtp=pass smtp.mailfrom="john doe"@example.com`,
			Header{AuthServID: "mx", Results: []Result{{Method: "smtp", Value: "pass", Props: []Property{{"smtp", "mailfrom", "john doe@example.com"}}}}}},
		{"method version", "mx; dkim/1=pass header.d=example.com",
			Header{AuthServID: "mx", Results: []Result{{Method: "dkim", Value: "pass", Props: []Property{{"header", "d", "example.com"}}}}}},
		{"no spaces, trailing semicolon", "mx;spf=pass smtp.mailfrom=example.com;dmarc=none header.from=example.com;",
			Header{AuthServID: "mx", Results: []Result{
				{Method: "spf", Value: "pass", Props: []Property{{"smtp", "mailfrom", "example.com"}}},
				{Method: "dmarc", Value: "none", Props: []Property{{"header", "from", "example.com"}}},
			}}},
		{"property without ptype", "spf.protection.outlook.com; dmarc=pass action=none header.from=example.com;compauth=pass reason=100",
			Header{AuthServID: "spf.protection.outlook.com", Results: []Result{
				{Method: "dmarc", Value: "pass", Props: []Property{{"", "action", "none"}, {"header", "from", "example.com"}}},
				{Method: "compauth", Value: "pass", Reason: "100"},
			}}},
		{"SRS address and equals signs", "mx; spf=pass smtp.mailfrom=SRS0=ab=CD=example.com=u@fwd.example",
			Header{AuthServID: "mx", Results: []Result{{Method: "spf", Value: "pass", Props: []Property{{"smtp", "mailfrom", "SRS0=ab=CD=example.com=u@fwd.example"}}}}}},
		{"none in any case", "mx (c); (d) NONE (e)", Header{AuthServID: "mx"}},
		{"id only", "  mx.example.org  ", Header{AuthServID: "mx.example.org"}},
		{"empty quoted id", `""; none`, Header{AuthServID: ""}},
		{"empty pvalue", "mx; dkim=none header.d=", Header{AuthServID: "mx", Results: []Result{{Method: "dkim", Value: "none", Props: []Property{{"header", "d", ""}}}}}},
		{"unknown result kept", "mx; spf=hardfail", Header{AuthServID: "mx", Results: []Result{{Method: "spf", Value: "hardfail"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := Parse(tc.value)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.value, err)
			}
			if !reflect.DeepEqual(*h, tc.want) {
				t.Errorf("Parse(%q) =\n%+v\nwant\n%+v", tc.value, *h, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value string
		want  error
	}{
		{"", ErrNoAuthServID},
		{"   \r\n ", ErrNoAuthServID},
		{"; spf=pass", ErrNoAuthServID},
		{"(only a comment)", ErrNoAuthServID},
		{"(unterminated mx; spf=pass", ErrSyntax},
		{`"unterminated; spf=pass`, ErrSyntax},
		{"mx junk; spf=pass", ErrSyntax},
		{"mx 99999999999999999999; none", ErrSyntax},
		{"mx; spf", ErrSyntax},
		{"mx; spf=", ErrSyntax},
		{"mx; spf pass", ErrSyntax},
		{"mx; dkim/=pass", ErrSyntax},
		{"mx; spf=pass smtp.=x", ErrSyntax},
		{"mx; spf=pass smtp.mailfrom", ErrSyntax},
		{"mx; spf=pass junk", ErrSyntax},
		{"mx; spf=pass (unterminated", ErrSyntax},
		{`mx; spf=pass reason="unterminated`, ErrSyntax},
		{"mx; =pass", ErrSyntax},
	}
	for _, tc := range tests {
		h, err := Parse(tc.value)
		if !errors.Is(err, tc.want) {
			t.Errorf("Parse(%q) = %+v, %v; want %v", tc.value, h, err, tc.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := Format(tc.id, tc.results)
			h, err := Parse(out)
			if err != nil {
				t.Fatalf("Parse(Format()): %v\n%s", err, out)
			}
			if h.AuthServID != tc.id {
				t.Errorf("authserv-id %q, want %q", h.AuthServID, tc.id)
			}
			if want := normalise(tc.results); !reflect.DeepEqual(h.Results, want) {
				t.Errorf("round trip:\n%+v\nwant\n%+v", h.Results, want)
			}
			if again := Format(h.AuthServID, h.Results); again != out {
				t.Errorf("Format(Parse(Format())) =\n%s\nwant\n%s", again, out)
			}
		})
	}
}

// normalise is what Format keeps of rs, as Parse returns it.
func normalise(rs []Result) []Result {
	var out []Result
	for _, r := range rs {
		n := Result{Method: strings.ToLower(r.Method), Value: verify.Status(strings.ToLower(string(r.Value))),
			Reason: keptValue(cleanText(r.Reason)), Comment: keptText(r.Comment)}
		if n.Value == "" {
			n.Value = verify.StatusNone
		}
		if !isKeyword(n.Method) || !isKeyword(string(n.Value)) {
			continue
		}
		for _, p := range r.Props {
			p = Property{strings.ToLower(p.Type), strings.ToLower(p.Name), keptValue(p.Value)}
			if isKeyword(p.Type) && isKeyword(p.Name) {
				n.Props = append(n.Props, p)
			}
		}
		out = append(out, n)
	}
	return out
}

func TestSameAuthServID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"mx.example.org", "mx.example.org", true},
		{"MX.Example.ORG", "mx.example.org", true},
		{"mx.example.org.", "mx.example.org", true},
		{" mx.example.org ", "mx.example.org", true},
		{"mx.example.org", "mx.example.org.evil", false},
		{"mx.example.org", "example.org", false},
		{"", "", false},
		{".", "", false},
	}
	for _, tc := range tests {
		if got := SameAuthServID(tc.a, tc.b); got != tc.want {
			t.Errorf("SameAuthServID(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
