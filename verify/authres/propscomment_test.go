package authres

import "testing"

// TestPropsComment: a comment after the properties, as iprev writes the
// name it checked (RFC 8601 §2.7.3), parses back as a comment.
func TestPropsComment(t *testing.T) {
	t.Parallel()
	r := Result{Method: "iprev", Value: "pass", Props: []Property{{"policy", "iprev", "192.0.2.1"}}, PropsComment: "mail.example.com"}
	got := FormatResults([]Result{r})
	if want := "iprev=pass policy.iprev=192.0.2.1 (mail.example.com)"; got != want {
		t.Fatalf("FormatResults = %q, want %q", got, want)
	}
	h, err := Parse("mx.example.net; " + got)
	if err != nil || len(h.Results) != 1 || h.Results[0].Props[0].Value != "192.0.2.1" || h.Results[0].Comment != "mail.example.com" {
		t.Errorf("Parse = %+v, %v", h, err)
	}
}
