package sigfield

import (
	"errors"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/internal/canon"
)

func TestParse(t *testing.T) {
	t.Parallel()
	f, err := Parse(" a=rsa-sha256; d=Bücher.Example; s=sél;\r\n\th=From : To::Subject; bh=YWJj;\r\n b=YW Jj; c=relaxed; l=10; t=1700000000; x=1800000000; q=dns/txt; i=1; cv=none")
	if err != nil {
		t.Fatal(err)
	}
	if f.Algorithm != "rsa-sha256" || f.Domain.ASCII != "xn--bcher-kva.example" || f.Selector.Unicode != "sél" ||
		string(f.Sig) != "abc" || string(f.BodyHash) != "abc" || f.B != "YWJj" ||
		strings.Join(f.Headers, ",") != "From,To,Subject" || !f.HasHeaders ||
		f.HC != canon.Relaxed || f.BC != canon.Simple || !f.HasCanon || f.Length != 10 ||
		!f.HasTime || f.Time != 1700000000 || !f.HasExpiry || f.Expiry != 1800000000 || f.Query != "dns/txt" {
		t.Errorf("Parse = %+v", f)
	}
	if v, _ := f.Tags.Get("cv"); v != "none" {
		t.Errorf("cv= not kept for the caller: %q", v)
	}
	f, err = Parse("d=example.com")
	if err != nil || f.Length != -1 || f.HasTime || f.HasHeaders || f.HC != canon.Simple || f.HasCanon {
		t.Errorf("defaults: %+v, %v", f, err)
	}
	if f, err := Parse("c=fancy/simple"); err != nil || f.CanonErr == nil {
		t.Errorf("unknown c= is kept, not an error: %v, %v", f.CanonErr, err)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ value, want string }{
		{"d=example.com; garbage", "tag-list"},
		{"d=exa$mple.com", "d=: not a valid domain name"},
		{"d=b\xfccher.example", "invalid UTF-8"},
		{"d=", "empty name"},
		{"s=sel.", "ends in a dot"},
		{"s=s_e l", "s="},
		{"b=", "b= is not base64"},
		{"bh=a!b", "bh= is not base64"},
		{"t=1234567890123", "t="},
		{"t=+5", "t="},
		{"x=-1", "x="},
		{"t=200; x=100", "x= is not after t="},
		{"t=100; x=100", "x= is not after t="},
		{"l=12k", "l="},
		{"l=" + strings.Repeat("1", 77), "l="},
	} {
		_, err := Parse(tc.value)
		if err == nil || !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want ErrSyntax containing %q", tc.value, err, tc.want)
		}
	}
	if f, err := Parse("t=123456789012; l=" + strings.Repeat("9", 76)); err != nil || f.Time != 123456789012 || f.Length <= 0 {
		t.Errorf("12-digit t= and 76-digit l=: %+v, %v", f, err)
	}
}

// FuzzParse: no panic, the result is never nil, errors wrap ErrSyntax, and
// what is accepted keeps the rules.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"v=1; a=rsa-sha256; d=example.com; s=sel; h=from:to; bh=YWJj; b=YWJj; t=1; x=2",
		"i=1; a=ed25519-sha256; cv=pass; d=bücher.example; s=sél; b=YWJj; t=999999999999",
		"d=xn--abc.example", "h=::", "l=0", "c=relaxed/relaxed", "t=1234567890123",
		"b=\r\n YW Jj", "d=b\xfccher.example; b=!",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		fs, err := Parse(value)
		if fs == nil {
			t.Fatal("nil Fields")
		}
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		if fs.HasTime && (fs.Time < 0 || fs.Time > 999999999999) || fs.HasExpiry && fs.HasTime && fs.Expiry <= fs.Time {
			t.Fatalf("t=/x= out of the rules: %+v", fs)
		}
		if _, ok := fs.Tags.Get("b"); ok && len(fs.Sig) == 0 {
			t.Fatalf("b= accepted without a signature: %q", value)
		}
		if _, ok := fs.Tags.Get("d"); ok && fs.Domain.IsZero() {
			t.Fatalf("d= accepted without a domain: %q", value)
		}
		for _, h := range fs.Headers {
			if h == "" || strings.ContainsAny(h, " \t\r\n:") {
				t.Fatalf("header name %q", h)
			}
		}
	})
}
