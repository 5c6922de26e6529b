package authres

import (
	"reflect"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/verify"
)

// unfoldField returns the value of a field written as in the RFC, with
// its continuation lines indented.
func rfcField(lines ...string) string {
	v := strings.Join(lines, "\r\n")
	return strings.TrimPrefix(v, "Authentication-Results:")
}

// TestRFC8601AppendixB parses the examples of RFC 8601 Appendix B.
func TestRFC8601AppendixB(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		field string
		want  Header
	}{
		{"B.2 nearly trivial", rfcField(
			"Authentication-Results: example.org 1; none"),
			Header{AuthServID: "example.org", Version: 1}},
		{"B.3 service provided, authentication done", rfcField(
			"Authentication-Results: example.com;",
			"                  spf=pass smtp.mailfrom=example.net"),
			Header{AuthServID: "example.com", Results: []Result{
				{Method: "spf", Value: verify.StatusPass, Props: []Property{{"smtp", "mailfrom", "example.net"}}},
			}}},
		{"B.4 several authentications, single MTA (1)", rfcField(
			"Authentication-Results: example.com;",
			"          auth=pass (cram-md5) smtp.auth=sender@example.net;",
			"          spf=pass smtp.mailfrom=example.net"),
			Header{AuthServID: "example.com", Results: []Result{
				{Method: "auth", Value: verify.StatusPass, Comment: "cram-md5", Props: []Property{{"smtp", "auth", "sender@example.net"}}},
				{Method: "spf", Value: verify.StatusPass, Props: []Property{{"smtp", "mailfrom", "example.net"}}},
			}}},
		{"B.4 several authentications, single MTA (2)", rfcField(
			"Authentication-Results: example.com; iprev=pass",
			"          policy.iprev=192.0.2.200"),
			Header{AuthServID: "example.com", Results: []Result{
				{Method: "iprev", Value: verify.StatusPass, Props: []Property{{"policy", "iprev", "192.0.2.200"}}},
			}}},
		{"B.5 different MTAs (1)", rfcField(
			"Authentication-Results: example.com;",
			"          dkim=pass (good signature) header.d=example.com"),
			Header{AuthServID: "example.com", Results: []Result{
				{Method: "dkim", Value: verify.StatusPass, Comment: "good signature", Props: []Property{{"header", "d", "example.com"}}},
			}}},
		{"B.5 different MTAs (2)", rfcField(
			"Authentication-Results: example.com;",
			"          auth=pass (cram-md5) smtp.auth=sender@example.com;",
			"          spf=fail smtp.mailfrom=example.com"),
			Header{AuthServID: "example.com", Results: []Result{
				{Method: "auth", Value: verify.StatusPass, Comment: "cram-md5", Props: []Property{{"smtp", "auth", "sender@example.com"}}},
				{Method: "spf", Value: verify.StatusFail, Props: []Property{{"smtp", "mailfrom", "example.com"}}},
			}}},
		{"B.6 multi-tiered (1)", rfcField(
			"Authentication-Results: example.com;",
			"    dkim=pass reason=\"good signature\"",
			"      header.i=@mail-router.example.net;",
			"    dkim=fail reason=\"bad signature\"",
			"      header.i=@newyork.example.com"),
			Header{AuthServID: "example.com", Results: []Result{
				{Method: "dkim", Value: verify.StatusPass, Reason: "good signature", Props: []Property{{"header", "i", "@mail-router.example.net"}}},
				{Method: "dkim", Value: verify.StatusFail, Reason: "bad signature", Props: []Property{{"header", "i", "@newyork.example.com"}}},
			}}},
		{"B.6 multi-tiered (2)", rfcField(
			"Authentication-Results: example.net;",
			"    dkim=pass (good signature) header.i=@newyork.example.com"),
			Header{AuthServID: "example.net", Results: []Result{
				{Method: "dkim", Value: verify.StatusPass, Comment: "good signature", Props: []Property{{"header", "i", "@newyork.example.com"}}},
			}}},
		{"B.7 comment-heavy", rfcField(
			"Authentication-Results: foo.example.net (foobar) 1 (baz);",
			"    dkim (Because I like it) / 1 (One yay) = (wait for it) fail",
			"      policy (A dot can go here) . (like that) expired",
			"      (this surprised me) = (as I wasn't expecting it) 1362471462"),
			Header{AuthServID: "foo.example.net", Version: 1, Results: []Result{
				{Method: "dkim", Value: verify.StatusFail,
					Comment: "Because I like it One yay wait for it A dot can go here like that this surprised me as I wasn't expecting it",
					Props:   []Property{{"policy", "expired", "1362471462"}}},
			}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := Parse(tc.field)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(*h, tc.want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", *h, tc.want)
			}
			id, err := AuthServID(tc.field)
			if err != nil || id != tc.want.AuthServID {
				t.Errorf("AuthServID = %q, %v; want %q", id, err, tc.want.AuthServID)
			}
		})
	}
}
