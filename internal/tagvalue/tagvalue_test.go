package tagvalue

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want List
		err  bool
	}{
		{"simple", "v=1; a=rsa-sha256", List{{"v", "1"}, {"a", "rsa-sha256"}}, false},
		{"trailing semicolon", "v=1;", List{{"v", "1"}}, false},
		{"folded value", "b=abc\r\n def; h=from", List{{"b", "abc\r\n def"}, {"h", "from"}}, false},
		{"spaces around equals", " v = 1 ;a=b ", List{{"v", "1"}, {"a", "b"}}, false},
		{"empty value", "t=; p=", List{{"t", ""}, {"p", ""}}, false},
		{"empty list", "  ", nil, false},
		{"duplicate", "a=1; a=2", nil, true},
		{"case-sensitive names", "a=1; A=2", List{{"a", "1"}, {"A", "2"}}, false},
		{"double semicolon", "a=1;; b=2", nil, true},
		{"leading semicolon", "; a=1", nil, true},
		{"no equals", "a=1; junk", nil, true},
		{"bad name digit first", "1a=1", nil, true},
		{"bad name char", "a-b=1", nil, true},
		{"bare LF", "a=x\ny", nil, true},
		{"control char", "a=x\x01", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.err {
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("Parse(%q) err = %v, want ErrSyntax", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Parse(%q) = %q, want %q", tt.in, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("Parse(%q)[%d] = %q, want %q", tt.in, i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestStripFWS(t *testing.T) {
	t.Parallel()
	if got := StripFWS("ab c\r\n\td"); got != "abcd" {
		t.Fatalf("StripFWS = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"v=1; a=rsa-sha256; b=abc\r\n def;", "a=1;;b", "=", "a=\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := Parse(s)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, tag := range l {
			if seen[tag.Name] {
				t.Fatalf("duplicate %q accepted", tag.Name)
			}
			seen[tag.Name] = true
		}
	})
}
