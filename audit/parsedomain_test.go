package audit

import (
	"errors"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/domain"
)

func TestParseDomain(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"example.com", "example.com"},
		{"Example.COM.", "example.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"BÜCHER.example", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{" _dmarc.example.com ", "_dmarc.example.com"},
	} {
		got, err := ParseDomain(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDomain(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "com", "a..b", "ex ample.com", "a≠b.example", "-a.example", "a-.example"} {
		if got, err := ParseDomain(in); err == nil {
			t.Errorf("ParseDomain(%q) = %q, want an error", in, got)
		} else if !strings.Contains(in, "-") && in != "com" && !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("ParseDomain(%q): %v does not wrap domain.ErrInvalid", in, err)
		}
	}
}
