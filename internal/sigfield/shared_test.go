package sigfield_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify/dkim"
)

// TestDKIMAndARCShareTheRules feeds the same signature tags to the DKIM
// verifier (in a DKIM-Signature, with v=1) and to the ARC validator (in an
// ARC-Message-Signature, with i=1): a field that one refuses as malformed
// the other refuses too, and a well-formed one gets past both parsers (to
// fail later, at the key lookup: the zone is empty).
func TestDKIMAndARCShareTheRules(t *testing.T) {
	t.Parallel()
	const base = "a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel; h=From:To; bh=YWJj; b=YWJj"
	for _, tc := range []struct {
		name, tags string
		malformed  bool
	}{
		{"well-formed", base, false},
		{"t= 12 digits", base + "; t=999999999999", false},
		{"t= 13 digits", base + "; t=1234567890123", true},
		{"t= signed", base + "; t=+1700000000", true},
		{"x= not after t=", base + "; t=1700000000; x=1600000000", true},
		{"x= after t=", base + "; t=1700000000; x=1800000000", false},
		{"d= U-labels", strings.Replace(base, "d=example.com", "d=Bücher.example", 1), false},
		{"d= A-labels", strings.Replace(base, "d=example.com", "d=xn--bcher-kva.example", 1), false},
		{"d= fake A-label", strings.Replace(base, "d=example.com", "d=xn--abc.example", 1), true},
		{"d= not a name", strings.Replace(base, "d=example.com", "d=exa$mple.com", 1), true},
		{"d= Latin-1 byte", strings.Replace(base, "d=example.com", "d=b\xfccher.example", 1), true},
		{"s= not a selector", strings.Replace(base, "s=sel", "s=se l", 1), true},
		{"bh= not base64", strings.Replace(base, "bh=YWJj", "bh=Y!Jj", 1), true},
		{"b= empty", strings.Replace(base, "b=YWJj", "b=", 1), true},
		{"l= digits", base + "; l=100", false},
		{"l= not digits", base + "; l=1e3", true},
		{"h= with an empty name", strings.Replace(base, "h=From:To", "h=From::To", 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dkimMalformed := dkimRefuses(t, tc.tags)
			arcMalformed := arcRefuses(t, tc.tags)
			if dkimMalformed != tc.malformed || arcMalformed != tc.malformed {
				t.Errorf("%q: DKIM malformed %v, ARC malformed %v; want both %v", tc.tags, dkimMalformed, arcMalformed, tc.malformed)
			}
		})
	}
}

const message = "From: a@example.com\r\nTo: b@example.net\r\nSubject: s\r\n\r\nbody\r\n"

func dkimRefuses(t *testing.T, tags string) bool {
	t.Helper()
	sigs, err := dkim.Verify(context.Background(), &dnstest.Resolver{}, strings.NewReader("DKIM-Signature: v=1; "+tags+"\r\n"+message), nil)
	if err != nil || len(sigs) != 1 {
		t.Fatalf("dkim.Verify: %v, %+v", err, sigs)
	}
	return errors.Is(sigs[0].Err, dkim.ErrMalformed)
}

func arcRefuses(t *testing.T, tags string) bool {
	t.Helper()
	set := "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.com; s=sel; b=YWJj\r\n" +
		"ARC-Message-Signature: i=1; " + tags + "\r\n" +
		"ARC-Authentication-Results: i=1; mx.example.com; none\r\n"
	res, err := arc.Validate(context.Background(), &dnstest.Resolver{}, strings.NewReader(set+message), nil)
	if err != nil || res.Status != "fail" {
		t.Fatalf("arc.Validate: %v, %+v", err, res)
	}
	return errors.Is(res.Err, arc.ErrSyntax)
}
