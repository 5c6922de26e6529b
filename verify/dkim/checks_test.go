package dkim

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify"
)

// The checks of RFC 6376 §6.1.1 (the signature) and §6.1.2 (the key), each
// with its reason and error.
func TestSignatureChecks(t *testing.T) {
	t.Parallel()
	k := testKeys()
	good := testSign(t, testMessage(500), signSpec{key: k.rsa2048})
	for _, tc := range []struct {
		name   string
		msg    string
		extra  string // key record tags
		result verify.Status
		reason string
		err    error
	}{
		{"From not in h=", testSign(t, testMessage(500), signSpec{key: k.rsa2048, headers: "To:Subject"}),
			"", verify.StatusPermerror, "From not signed", ErrFromNotSigned},
		{"i= outside d=", testSign(t, testMessage(500), signSpec{key: k.rsa2048, identifier: "a@example.org"}),
			"", verify.StatusPermerror, "i= not within d=", ErrDomainMismatch},
		{"i= without @", testSign(t, testMessage(500), signSpec{key: k.rsa2048, identifier: "example.com"}),
			"", verify.StatusPermerror, "i= not within d=", ErrDomainMismatch},
		{"i= in a subdomain, any case", testSign(t, testMessage(500), signSpec{key: k.rsa2048, identifier: "a@Mail.EXAMPLE.com"}),
			"", verify.StatusPass, "", nil},
		{"q= without dns/txt", testSign(t, testMessage(500), signSpec{key: k.rsa2048, extra: "q=x-other; "}),
			"", verify.StatusPermerror, "unsupported q= method", ErrQueryMethod},
		{"q= with dns/txt", testSign(t, testMessage(500), signSpec{key: k.rsa2048, extra: "q=x-other:dns/txt; "}),
			"", verify.StatusPass, "", nil},
		{"unknown c=", strings.Replace(good, "c=simple/simple", "c=simple/bogus", 1),
			"", verify.StatusPermerror, "unsupported canonicalization", ErrCanonicalization},
		{"unknown a=", strings.Replace(good, "a=rsa-sha256", "a=rsa-sha512", 1),
			"", verify.StatusPermerror, "unsupported algorithm", ErrAlgorithm},
		{"key h= without the hash", good, "h=sha1; ", verify.StatusPermerror, "hash not allowed by key h=", ErrAlgorithm},
		{"key h= with the hash", good, "h=sha1:sha256; ", verify.StatusPass, "", nil},
		{"key s= not email", good, "s=other; ", verify.StatusPermerror, "key not for email (s=)", nil},
		{"key k= unknown", good, "k=dsa; ", verify.StatusPermerror, "unsupported key type", nil},
		{"b= not base64", strings.Replace(good, "\r\n\tb=", "\r\n\tb=*", 1),
			"", verify.StatusPermerror, "malformed signature", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := keyRecord(k.rsa2048, tc.extra)
			if strings.HasPrefix(tc.extra, "k=") {
				rec = strings.Replace(rec, "k=rsa; ", "", 1)
			}
			s := wantOne(t, verifyString(t, resolverFor(map[string]string{keyName: rec}), tc.msg, nil), tc.result, tc.reason)
			if tc.err != nil && !errors.Is(s.Err, tc.err) {
				t.Errorf("Err %v, want %v", s.Err, tc.err)
			}
		})
	}
}

// countingResolver counts TXT lookups.
type countingResolver struct {
	*dnstest.Resolver
	n atomic.Int32
}

func (c *countingResolver) LookupTXT(ctx context.Context, name string) ([]string, dnscache.AnswerInfo, error) {
	c.n.Add(1)
	return c.Resolver.LookupTXT(ctx, name)
}

// Signatures with the same key share one lookup, started at NewVerifier
// (before any body byte).
func TestKeyLookupShared(t *testing.T) {
	t.Parallel()
	k := testKeys()
	msg := testSign(t, testMessage(500), signSpec{key: k.ed})
	msg = testSign(t, msg, signSpec{key: k.ed, relaxed: true})
	r := &countingResolver{Resolver: oneKey(k.ed, "")}
	header, body := headerOf(t, msg)
	v := NewVerifier(context.Background(), r, header, nil)
	v.Write([]byte(body))
	sigs := v.Close()
	if len(sigs) != 2 || sigs[0].Status != verify.StatusPass || sigs[1].Status != verify.StatusPass {
		t.Fatalf("%+v", sigs)
	}
	if n := r.n.Load(); n != 1 {
		t.Errorf("%d lookups for one key", n)
	}
}
