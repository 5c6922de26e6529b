package dkim

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/internal/tagvalue"
	"github.com/authmilter/authmilter/verify"
)

const keyName = "sel._domainkey.example.com"

func oneKey(key crypto.Signer, extra string) *dnstest.Resolver {
	return resolverFor(map[string]string{keyName: keyRecord(key, extra)})
}

func wantOne(t *testing.T, sigs []Signature, result verify.Status, reasonPart string) Signature {
	t.Helper()
	if len(sigs) != 1 {
		t.Fatalf("got %d signatures, want 1: %+v", len(sigs), sigs)
	}
	s := sigs[0]
	if s.Status != result {
		t.Fatalf("result %s (%s: %v), want %s", s.Status, s.Reason, s.Err, result)
	}
	if !strings.Contains(s.Reason, reasonPart) {
		t.Errorf("reason %q does not mention %q", s.Reason, reasonPart)
	}
	if (result == verify.StatusPass) != (s.Err == nil) {
		t.Errorf("result %s with Err %v", s.Status, s.Err)
	}
	return s
}

func TestPass(t *testing.T) {
	t.Parallel()
	k := testKeys()
	for _, tc := range []struct {
		name    string
		key     crypto.Signer
		relaxed bool
		bits    int
		alg     string
	}{
		{"rsa2048/simple", k.rsa2048, false, 2048, "rsa-sha256"},
		{"rsa2048/relaxed", k.rsa2048, true, 2048, "rsa-sha256"},
		{"rsa1024/relaxed", k.rsa1024, true, 1024, "rsa-sha256"},
		{"ed25519/simple", k.ed, false, 256, "ed25519-sha256"},
		{"ed25519/relaxed", k.ed, true, 256, "ed25519-sha256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := testSign(t, testMessage(2000), signSpec{key: tc.key, relaxed: tc.relaxed, identifier: "alice@mail.example.com"})
			s := wantOne(t, verifyString(t, oneKey(tc.key, ""), msg, nil), verify.StatusPass, "")
			if s.Domain != "example.com" || s.Selector != "sel" || s.Algorithm != tc.alg ||
				s.Identifier != "alice@mail.example.com" || s.KeyBits != tc.bits || s.KeyTesting || s.KeyStrict {
				t.Errorf("facts: %+v", s)
			}
			// b= in full, FWS removed (testSign folds it).
			field := msg[:strings.Index(msg, "\r\nFrom:")]
			tags, err := tagvalue.Parse(field[len("DKIM-Signature:"):])
			if err != nil {
				t.Fatal(err)
			}
			b, _ := tags.Get("b")
			if want := tagvalue.StripFWS(b); s.B != want || strings.ContainsAny(s.B, " \t\r\n") {
				t.Errorf("B = %q, want %q", s.B, want)
			}
		})
	}
}

func TestFail(t *testing.T) {
	t.Parallel()
	k := testKeys()
	for _, key := range []crypto.Signer{k.rsa2048, k.ed} {
		msg := testSign(t, testMessage(3000), signSpec{key: key, relaxed: true})
		r := oneKey(key, "")
		t.Run(fmt.Sprintf("%T/body", key), func(t *testing.T) {
			bad := strings.Replace(msg, "quick brown", "quick green", 1)
			wantOne(t, verifyString(t, r, bad, nil), verify.StatusFail, "body hash mismatch")
		})
		t.Run(fmt.Sprintf("%T/signed-header", key), func(t *testing.T) {
			bad := strings.Replace(msg, "Subject: Lunch", "Subject: Dinner", 1)
			wantOne(t, verifyString(t, r, bad, nil), verify.StatusFail, "signature mismatch")
		})
		t.Run(fmt.Sprintf("%T/unsigned-header-added", key), func(t *testing.T) {
			// Message-ID is not in h=: changing it does not matter.
			ok := strings.Replace(msg, "<1234@", "<5678@", 1)
			wantOne(t, verifyString(t, r, ok, nil), verify.StatusPass, "")
		})
	}
}

func TestKeyProblems(t *testing.T) {
	t.Parallel()
	k := testKeys()
	msg := testSign(t, testMessage(500), signSpec{key: k.rsa2048})
	for _, tc := range []struct {
		name   string
		r      *dnstest.Resolver
		result verify.Status
		reason string
	}{
		{"missing", resolverFor(nil), verify.StatusPermerror, "key not found"},
		{"nodata", &dnstest.Resolver{A: map[string][]string{keyName: {"192.0.2.1"}}}, verify.StatusPermerror, "key not found"},
		{"revoked", resolverFor(map[string]string{keyName: "v=DKIM1; k=rsa; p="}), verify.StatusPermerror, "key revoked"},
		{"garbage", resolverFor(map[string]string{keyName: "v=DKIM1; k=rsa; p=bm90IGEga2V5"}), verify.StatusPermerror, "invalid key record"},
		{"wrong-key", oneKey(k.rsa1024, ""), verify.StatusFail, "signature mismatch"},
		{"key-type", oneKey(k.ed, ""), verify.StatusPermerror, "a= does not match key type"},
		{"servfail", &dnstest.Resolver{Fail: map[string]dnstest.Failure{keyName: dnstest.ServFail}}, verify.StatusTemperror, "temporarily"},
		{"timeout", &dnstest.Resolver{Fail: map[string]dnstest.Failure{keyName: dnstest.Timeout}}, verify.StatusTemperror, "temporarily"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := wantOne(t, verifyString(t, tc.r, msg, nil), tc.result, tc.reason)
			if tc.result == verify.StatusTemperror && !dnscache.IsTemporary(s.Err) {
				t.Errorf("Err %v does not unwrap to dnscache.ErrTemporary", s.Err)
			}
		})
	}
}

// RFC 8301 §3.1 and §3.2.
func TestRFC8301(t *testing.T) {
	t.Parallel()
	k := testKeys()
	t.Run("rsa-sha1", func(t *testing.T) {
		msg := testSign(t, testMessage(500), signSpec{key: k.rsa2048, hash: "sha1"})
		s := wantOne(t, verifyString(t, oneKey(k.rsa2048, ""), msg, nil), verify.StatusPermerror, "rsa-sha1 not accepted")
		if s.Algorithm != "rsa-sha1" || s.KeyBits != 2048 {
			t.Errorf("facts: %+v", s)
		}
	})
	t.Run("rsa-512", func(t *testing.T) {
		msg := testSign(t, testMessage(500), signSpec{key: k.rsa512})
		wantOne(t, verifyString(t, oneKey(k.rsa512, ""), msg, nil), verify.StatusPermerror, "shorter than 1024 bits: 512 bits")
	})
	t.Run("rsa-1024", func(t *testing.T) {
		msg := testSign(t, testMessage(500), signSpec{key: k.rsa1024})
		wantOne(t, verifyString(t, oneKey(k.rsa1024, ""), msg, nil), verify.StatusPass, "")
	})
}

// RFC 6376 §3.6.1 key flags.
func TestKeyFlags(t *testing.T) {
	t.Parallel()
	k := testKeys()
	t.Run("t=y", func(t *testing.T) {
		msg := testSign(t, testMessage(500), signSpec{key: k.ed})
		s := wantOne(t, verifyString(t, oneKey(k.ed, "t=y; "), msg, nil), verify.StatusPass, "")
		if !s.KeyTesting || s.KeyStrict {
			t.Errorf("flags: testing %v strict %v", s.KeyTesting, s.KeyStrict)
		}
	})
	t.Run("t=s/i-in-d", func(t *testing.T) {
		msg := testSign(t, testMessage(500), signSpec{key: k.ed, identifier: "alice@example.com"})
		s := wantOne(t, verifyString(t, oneKey(k.ed, "t=y:s; "), msg, nil), verify.StatusPass, "")
		if !s.KeyTesting || !s.KeyStrict {
			t.Errorf("flags: testing %v strict %v", s.KeyTesting, s.KeyStrict)
		}
	})
	t.Run("t=s/i-in-subdomain", func(t *testing.T) {
		msg := testSign(t, testMessage(500), signSpec{key: k.ed, identifier: "alice@sub.example.com"})
		s := wantOne(t, verifyString(t, oneKey(k.ed, "t=s; "), msg, nil), verify.StatusPermerror, "t=s")
		if !errors.Is(s.Err, ErrStrictIdentity) {
			t.Errorf("Err %v", s.Err)
		}
	})
}

// The l= choice: policy, never pass, and only when nothing else is wrong.
func TestBodyLength(t *testing.T) {
	t.Parallel()
	k := testKeys()
	msg := testSign(t, testMessage(2000), signSpec{key: k.rsa2048, length: 100})
	s := wantOne(t, verifyString(t, oneKey(k.rsa2048, ""), msg, nil), verify.StatusPolicy, "l= body length limit not accepted")
	if !errors.Is(s.Err, ErrBodyLength) {
		t.Errorf("Err %v", s.Err)
	}
	// Content appended after l= is exactly what the choice guards against.
	wantOne(t, verifyString(t, oneKey(k.rsa2048, ""), msg+"Click here!\r\n", nil), verify.StatusPolicy, "l=")
	// A key problem is still reported as such.
	wantOne(t, verifyString(t, resolverFor(nil), msg, nil), verify.StatusPermerror, "key not found")
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	k := testKeys()
	r := oneKey(k.ed, "")
	future := time.Now().Add(24 * time.Hour).Unix()
	msg := testSign(t, testMessage(500), signSpec{key: k.ed, extra: fmt.Sprintf("t=%d; x=%d; ", future-3600, future)})
	wantOne(t, verifyString(t, r, msg, nil), verify.StatusPass, "")
	// Options.Now past x=: expired even though the wall clock is not.
	late := &Options{Now: func() time.Time { return time.Unix(future+1, 0) }}
	s := wantOne(t, verifyString(t, r, msg, late), verify.StatusPermerror, "signature expired")
	if !errors.Is(s.Err, ErrExpired) {
		t.Errorf("Err %v", s.Err)
	}
	// x= in the past by the wall clock: expired with the default clock,
	// but Options.Now is the only clock, so a message checked as of a
	// time before x= passes (conformance vectors, replayed mail).
	past := time.Now().Add(-24 * time.Hour).Unix()
	old := testSign(t, testMessage(500), signSpec{key: k.ed, extra: fmt.Sprintf("x=%d; ", past)})
	wantOne(t, verifyString(t, r, old, nil), verify.StatusPermerror, "signature expired")
	early := &Options{Now: func() time.Time { return time.Unix(past-10, 0) }}
	wantOne(t, verifyString(t, r, old, early), verify.StatusPass, "")
	// RFC 6376 §3.5: x= must be after t=.
	bad := testSign(t, testMessage(500), signSpec{key: k.ed, extra: fmt.Sprintf("t=%d; x=%d; ", future, future-1)})
	wantOne(t, verifyString(t, r, bad, nil), verify.StatusPermerror, "x= is not after t=")
}

func TestSignatureCap(t *testing.T) {
	t.Parallel()
	k := testKeys()
	msg := testMessage(1000)
	for i := 0; i < 7; i++ {
		msg = testSign(t, msg, signSpec{key: k.ed, selector: fmt.Sprintf("s%d", i)})
	}
	r := resolverFor(nil)
	for i := 0; i < 7; i++ {
		r.TXT[fmt.Sprintf("s%d._domainkey.example.com", i)] = []string{keyRecord(k.ed, "")}
	}
	for _, tc := range []struct {
		opts    *Options
		checked int
	}{{nil, 5}, {&Options{MaxSignatures: 2}, 2}, {&Options{MaxSignatures: 10}, 7}} {
		t.Run(fmt.Sprint(tc.checked), func(t *testing.T) {
			sigs := verifyString(t, r, msg, tc.opts)
			if len(sigs) != 7 {
				t.Fatalf("%d results, want 7", len(sigs))
			}
			for i, s := range sigs {
				// testSign prepends: the header order is s6, s5, ... s0.
				if want := fmt.Sprintf("s%d", 6-i); s.Selector != want {
					t.Errorf("sig %d: selector %s, want %s", i, s.Selector, want)
				}
				want := verify.StatusPass
				if i >= tc.checked {
					want = verify.StatusPolicy
				}
				if s.Status != want {
					t.Errorf("sig %d: %s (%s), want %s", i, s.Status, s.Reason, want)
				}
				if want == verify.StatusPolicy {
					if r := fmt.Sprintf("not checked: more than %d signatures", tc.checked); s.Reason != r || !errors.Is(s.Err, ErrNotChecked) {
						t.Errorf("sig %d: reason %q err %v", i, s.Reason, s.Err)
					}
					if s.Domain != "example.com" || s.B == "" {
						t.Errorf("sig %d: facts missing: %+v", i, s)
					}
				}
			}
		})
	}
}

func TestMalformedSignature(t *testing.T) {
	t.Parallel()
	k := testKeys()
	good := testSign(t, testMessage(300), signSpec{key: k.rsa2048})
	r := oneKey(k.rsa2048, "")
	for _, tc := range []struct{ name, field, reason string }{
		{"no-equals", "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; garbage; b=abc; bh=abc; h=From\r\n", "has no '='"},
		{"duplicate", "DKIM-Signature: v=1; v=1; a=rsa-sha256; d=example.com; s=sel; b=abc; bh=abc; h=From\r\n", "duplicate"},
		{"missing-bh", "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; b=abc; h=From\r\n", "missing required tag bh="},
		{"version", "DKIM-Signature: v=2; a=rsa-sha256; d=example.com; s=sel; b=abc; bh=abc; h=From\r\n", "unsupported version"},
		{"bad-time", "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; b=YWJj; bh=YWJj; h=From; x=soon\r\n", "x="},
		// The rules shared with ARC (internal/sigfield, RFC 6376 §3.5).
		{"13-digit-t", "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; b=YWJj; bh=YWJj; h=From; t=1234567890123\r\n", "t="},
		{"bad-d", "DKIM-Signature: v=1; a=rsa-sha256; d=exa$mple.com; s=sel; b=YWJj; bh=YWJj; h=From\r\n", "d="},
		{"bad-l", "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; b=YWJj; bh=YWJj; h=From; l=12k\r\n", "l="},
		{"bh-not-base64", "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; b=YWJj; bh=a!b; h=From\r\n", "bh= is not base64"},
		{"empty", "DKIM-Signature:\r\n", "missing required tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sigs := verifyString(t, r, tc.field+good, nil)
			if len(sigs) != 2 {
				t.Fatalf("%d results", len(sigs))
			}
			s := sigs[0]
			if s.Status != verify.StatusPermerror || !strings.HasPrefix(s.Reason, "malformed signature") ||
				!strings.Contains(s.Reason, tc.reason) || !errors.Is(s.Err, ErrMalformed) {
				t.Errorf("got %s %q %v", s.Status, s.Reason, s.Err)
			}
			// The good signature beside it is unaffected.
			if sigs[1].Status != verify.StatusPass {
				t.Errorf("good signature: %s %s", sigs[1].Status, sigs[1].Reason)
			}
		})
	}
}

func TestNoSignature(t *testing.T) {
	t.Parallel()
	sigs := verifyString(t, resolverFor(nil), testMessage(100), nil)
	if sigs == nil || len(sigs) != 0 {
		t.Errorf("got %#v, want an empty slice", sigs)
	}
}

func headerOf(t testing.TB, msg string) ([]message.Field, string) {
	t.Helper()
	i := strings.Index(msg, "\r\n\r\n")
	fields, err := message.ReadHeader(bufioReader(msg[:i+4]), message.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return fields, msg[i+4:]
}

// The verdicts do not depend on how the body is cut.
func TestChunking(t *testing.T) {
	k := testKeys()
	checkNoLeak(t)
	msg := testMessage(5000)
	msg = testSign(t, msg, signSpec{key: k.rsa2048, selector: "a", relaxed: true})
	msg = testSign(t, msg, signSpec{key: k.ed, selector: "b"})
	r := resolverFor(map[string]string{
		"a._domainkey.example.com": keyRecord(k.rsa2048, ""),
		"b._domainkey.example.com": keyRecord(k.ed, ""),
	})
	for _, variant := range []struct {
		name string
		msg  string
		want verify.Status
	}{
		{"intact", msg, verify.StatusPass},
		{"body-changed", strings.Replace(msg, "lazy dog", "lazy cat", 1), verify.StatusFail},
	} {
		header, body := headerOf(t, variant.msg)
		feed := func(chunk int) []Signature {
			v := NewVerifier(context.Background(), r, header, nil)
			for i := 0; i < len(body); i += chunk {
				if _, err := v.Write([]byte(body[i:min(i+chunk, len(body))])); err != nil {
					t.Fatal(err)
				}
			}
			return v.Close()
		}
		whole := feed(len(body))
		for _, chunk := range []int{1, 2, 7, 1000} {
			got := feed(chunk)
			if len(got) != 2 {
				t.Fatalf("%s chunk %d: %d results", variant.name, chunk, len(got))
			}
			for i := range got {
				if got[i].Status != variant.want || got[i].Status != whole[i].Status || got[i].Reason != whole[i].Reason {
					t.Errorf("%s chunk %d sig %d: %s %q, one chunk: %s %q", variant.name, chunk, i,
						got[i].Status, got[i].Reason, whole[i].Status, whole[i].Reason)
				}
			}
		}
	}
}

func TestAbort(t *testing.T) {
	k := testKeys()
	checkNoLeak(t)
	msg := testMessage(20000)
	for i := 0; i < 3; i++ {
		msg = testSign(t, msg, signSpec{key: k.ed, selector: fmt.Sprintf("s%d", i)})
	}
	r := resolverFor(nil)
	for i := 0; i < 3; i++ {
		r.TXT[fmt.Sprintf("s%d._domainkey.example.com", i)] = []string{keyRecord(k.ed, "")}
	}
	header, body := headerOf(t, msg)

	t.Run("mid-body", func(t *testing.T) {
		v := NewVerifier(context.Background(), r, header, nil)
		if _, err := v.Write([]byte(body[:len(body)/2])); err != nil {
			t.Fatal(err)
		}
		v.Abort()
		if _, err := v.Write([]byte(body[len(body)/2:])); !errors.Is(err, ErrAborted) {
			t.Errorf("Write after Abort: %v", err)
		}
		if got := v.Close(); got != nil {
			t.Errorf("Close after Abort: %v", got)
		}
		v.Abort()
	})
	t.Run("before-body", func(t *testing.T) {
		v := NewVerifier(context.Background(), r, header, nil)
		v.Abort()
		if _, err := v.Write([]byte(body)); !errors.Is(err, ErrAborted) {
			t.Errorf("Write after Abort: %v", err)
		}
	})
	t.Run("after-close", func(t *testing.T) {
		v := NewVerifier(context.Background(), r, header, nil)
		v.Write([]byte(body))
		sigs := v.Close()
		v.Abort()
		if len(sigs) != 3 || sigs[0].Status != verify.StatusPass {
			t.Errorf("results %+v", sigs)
		}
		if again := v.Close(); len(again) != 3 {
			t.Errorf("second Close: %v", again)
		}
		if _, err := v.Write([]byte("x")); !errors.Is(err, ErrClosed) {
			t.Errorf("Write after Close: %v", err)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		// Abort from another goroutine while Write is in progress.
		v := NewVerifier(context.Background(), r, header, nil)
		done := make(chan error, 1)
		go func() {
			var err error
			for i := 0; i < 1000 && err == nil; i++ {
				_, err = v.Write([]byte(body[:100]))
			}
			done <- err
		}()
		time.Sleep(time.Millisecond)
		v.Abort()
		if err := <-done; err != nil && !errors.Is(err, ErrAborted) {
			t.Errorf("Write: %v", err)
		}
	})
}

// slowResolver answers nothing until the context ends.
type slowResolver struct{ dnstest.Resolver }

func (s *slowResolver) LookupTXT(ctx context.Context, name string) ([]string, dnscache.AnswerInfo, error) {
	<-ctx.Done()
	return nil, dnscache.AnswerInfo{}, dnscache.NewError(dnscache.ErrTemporary, name, "slow", ctx.Err().Error(), true)
}

func TestDeadline(t *testing.T) {
	k := testKeys()
	checkNoLeak(t)
	msg := testMessage(1000)
	msg = testSign(t, msg, signSpec{key: k.ed, selector: "a"})
	msg = testSign(t, msg, signSpec{key: k.ed, selector: "b"})
	header, body := headerOf(t, msg)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	v := NewVerifier(ctx, &slowResolver{}, header, nil)
	if _, err := v.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	sigs := v.Close()
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Close took %v with a 200ms deadline", el)
	}
	for _, s := range sigs {
		if s.Status != verify.StatusTemperror {
			t.Errorf("%s: %s %s", s.Selector, s.Status, s.Reason)
		}
	}
}
