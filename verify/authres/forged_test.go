package authres

import (
	"slices"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/internal/message"
)

// TestAuthServIDForged checks that fields claiming our authserv-id are
// recognised however they are disguised (RFC 8601 §5: a receiver removes or
// renames fields carrying its own authserv-id that it did not add).
func TestAuthServIDForged(t *testing.T) {
	t.Parallel()
	const ours = "mx.example.org"
	tests := []struct {
		name  string
		value string
		want  string
		ours  bool
	}{
		{"plain", " mx.example.org; spf=pass smtp.mailfrom=evil.example", "mx.example.org", true},
		{"no space", "mx.example.org;spf=pass", "mx.example.org", true},
		{"upper case", " MX.EXAMPLE.ORG; dkim=pass", "MX.EXAMPLE.ORG", true},
		{"trailing dot", " mx.example.org.; dkim=pass", "mx.example.org.", true},
		{"version", " mx.example.org 1; dmarc=pass", "mx.example.org", true},
		{"version no space", " mx.example.org 1;dmarc=pass", "mx.example.org", true},
		{"leading comment", " (looks harmless) mx.example.org; dmarc=pass", "mx.example.org", true},
		{"nested leading comment", " ((a)(b \\) c)) mx.example.org; dmarc=pass", "mx.example.org", true},
		{"comment glued", " mx.example.org(x); dmarc=pass", "mx.example.org", true},
		{"folded before", "\r\n\t mx.example.org\r\n ; dmarc=pass", "mx.example.org", true},
		{"bare LF folded", "\n\tmx.example.org\n\t1\n\t; dmarc=pass", "mx.example.org", true},
		{"quoted", ` "mx.example.org"; dmarc=pass`, "mx.example.org", true},
		{"quoted with pair", ` "mx.exa\mple.org"; dmarc=pass`, "mx.example.org", true},
		{"quoted upper", ` "MX.example.org" 1; dmarc=pass`, "MX.example.org", true},
		{"tab separated", "\tmx.example.org\t;\tdmarc=pass", "mx.example.org", true},
		{"junk after id", " mx.example.org junk; dmarc=pass", "mx.example.org", true},
		{"NUL after id", " mx.example.org\x00; dmarc=pass", "mx.example.org", true},
		{"only the id", " mx.example.org", "mx.example.org", true},
		{"none", " mx.example.org; none", "mx.example.org", true},
		{"other id", " mx.example.org.evil.example; dmarc=pass", "mx.example.org.evil.example", false},
		{"prefix of ours", " example.org; dmarc=pass", "example.org", false},
		{"id in a comment only", " (mx.example.org) other.example; dmarc=pass", "other.example", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := AuthServID(tc.value)
			if err != nil {
				t.Fatalf("AuthServID(%q): %v", tc.value, err)
			}
			if id != tc.want {
				t.Errorf("AuthServID(%q) = %q, want %q", tc.value, id, tc.want)
			}
			if got := SameAuthServID(id, ours); got != tc.ours {
				t.Errorf("SameAuthServID(%q, %q) = %v, want %v", id, ours, got, tc.ours)
			}
		})
	}
}

// TestAuthServIDSeveralFields picks ours out of a header with several
// Authentication-Results fields, as the milter does.
func TestAuthServIDSeveralFields(t *testing.T) {
	t.Parallel()
	raw := "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=a.example\r\n" +
		"Authentication-Results: upstream.example.net;\r\n\tdkim=pass header.d=a.example\r\n" +
		"authentication-results: (forged)\r\n MX.Example.Org 1;\r\n dmarc=pass\r\n" +
		"Authentication-Results: \"mx.example.org\"; none\r\n" +
		"Subject: mx.example.org; x\r\n" +
		"\r\n"
	fields, err := message.ReadHeader(newReader(raw), message.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	n := 0
	for _, f := range fields {
		if !strings.EqualFold(f.Name, FieldName) {
			continue
		}
		n++
		if id, err := AuthServID(f.Value()); err == nil && SameAuthServID(id, "mx.example.org") {
			got = append(got, n)
		}
	}
	if want := []int{1, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("forged fields %v, want %v", got, want)
	}
}
