package authres

import "testing"

// TestHeaderB follows RFC 6008 §4.
func TestHeaderB(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		b    string
		all  []string
		want string
	}{
		{"alone", "abcdefghijklmnop", nil, "abcdefgh"},
		{"alone, listed", "abcdefghijklmnop", []string{"abcdefghijklmnop"}, "abcdefgh"},
		{"short", "abc", nil, "abc"},
		{"exactly 8", "abcdefgh", []string{"abcdefgh", "zzzzzzzz"}, "abcdefgh"},
		{"differ after 8", "abcdefgh1234", []string{"abcdefgh1234", "abcdefgh5678"}, "abcdefgh1"},
		{"differ late", "abcdefghijkl1", []string{"abcdefghijkl2", "abcdefghijkl1"}, "abcdefghijkl1"},
		{"differ early", "abcdefghijkl", []string{"zbcdefghijkl"}, "abcdefgh"},
		{"other is a prefix", "abcdefghijkl", []string{"abcdefghij"}, "abcdefghijk"},
		{"b is a prefix of other", "abcdefghij", []string{"abcdefghijkl"}, "abcdefghij"},
		{"folded", "abcd efgh\r\n\tijkl", []string{"abcdefgh ijxx"}, "abcdefghijk"},
		{"empty", "", []string{"abcdefgh"}, ""},
	}
	for _, tc := range tests {
		if got := HeaderB(tc.b, tc.all); got != tc.want {
			t.Errorf("%s: HeaderB(%q, %q) = %q, want %q", tc.name, tc.b, tc.all, got, tc.want)
		}
	}
}
