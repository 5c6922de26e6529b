package dkim

import (
	"errors"
	"fmt"
	"strings"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/internal/dkimkey"
	"github.com/authmilter/authmilter/verify"
)

// outcome gathers what is known about one signature when the body ends.
type outcome struct {
	parseErr error     // from parseSignature
	checked  bool      // within Options.MaxSignatures
	verified bool      // go-msgauth returned a verdict
	err      error     // go-msgauth's verdict (nil: pass)
	runErr   error     // go-msgauth stopped without a verdict
	key      keyResult // our own key lookup, for size and flags
}

// classify turns an outcome into a Signature. The order of the checks is
// the order of RFC 6376 §6.1: the signature field (§6.1.1), the key
// (§6.1.2), then the hashes (§6.1.3).
func classify(st *sigTags, in outcome, max int, now time.Time) Signature {
	var s Signature
	st.fill(&s)
	if k := in.key.key; k != nil {
		s.KeyBits = k.Bits
		s.KeyTesting = k.Testing()
		s.KeyStrict = k.Strict()
	}
	set := func(r verify.Result, reason string, err error) Signature {
		s.Result, s.Reason = r, reason
		if err != nil {
			s.Err = fmt.Errorf("dkim: d=%s s=%s: %w", s.Domain, s.Selector, err)
		}
		return s
	}

	switch {
	case in.parseErr != nil:
		// RFC 6376 §6.1.1: a signature that does not parse, or lacks a
		// required tag, is PERMFAIL.
		return set(verify.ResultPermerror, reasonOf(in.parseErr), in.parseErr)
	case !in.checked:
		// RFC 6376 §6.1: a verifier MAY limit the signatures it checks;
		// the others are reported, not dropped.
		reason := fmt.Sprintf("not checked: more than %d signatures", max)
		return set(verify.ResultPolicy, reason, fmt.Errorf("%w: more than %d signatures", ErrNotChecked, max))
	case !in.verified && in.runErr != nil:
		return set(verify.ResultTemperror, "verification error", in.runErr)
	case !in.verified:
		return set(verify.ResultTemperror, "verification not finished in time", ErrUnfinished)
	}

	err := in.err
	switch {
	case err == nil:
		// go-msgauth checks neither t=s nor our clock; both only turn a
		// pass into a permerror.
		if st.expired(now) {
			return set(verify.ResultPermerror, "signature expired", fmt.Errorf("%w: x=%d", ErrExpired, st.expiry))
		}
		// RFC 6376 §3.6.1 t=s: the i= domain MUST be d= itself, not a
		// subdomain.
		if s.KeyStrict && !strings.EqualFold(st.identityDomain(), st.domain) {
			return set(verify.ResultPermerror, "i= not in d= itself (key t=s)", ErrStrictIdentity)
		}
		return set(verify.ResultPass, "", nil)
	case msgauth.IsTempFail(err):
		// RFC 6376 §6.1.2: key unavailable → TEMPFAIL. go-msgauth keeps
		// only the text of the DNS error; our own lookup's error unwraps to
		// dnscache.ErrTemporary.
		if dnscache.IsTemporary(in.key.err) {
			err = in.key.err
		}
		return set(verify.ResultTemperror, "key lookup failed temporarily", err)
	case msgauth.IsPermFail(err):
		return set(verify.ResultPermerror, permReason(err, in.key), err)
	case st.hasLength:
		// go-msgauth fails every l= signature before hashing the body.
		// RFC 6376 §8.2: content can be appended past l=; we do not
		// accept such a signature, and say so with policy rather than
		// fail (the signature may well be valid for what it covers).
		return set(verify.ResultPolicy, ErrBodyLength.Error(), ErrBodyLength)
	default:
		return set(verify.ResultFail, failReason(err), err)
	}
}

// msgauthMessage returns go-msgauth's error text without its "dkim: "
// prefix. go-msgauth's error types are unexported, so the text is all that
// distinguishes, say, a revoked key from a missing one; the reasons below
// are tested against v0.7.0.
func msgauthMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "dkim: ")
}

// failReason names what did not verify (RFC 6376 §6.1.3).
func failReason(err error) string {
	m := msgauthMessage(err)
	switch {
	case strings.HasPrefix(m, "body hash did not verify"):
		return "body hash mismatch"
	case strings.HasPrefix(m, "signature did not verify"):
		return "signature mismatch"
	}
	return m
}

// permReason names the permanent failure from go-msgauth's message; for a
// short key it takes the size from our own key lookup.
func permReason(err error, key keyResult) string {
	m := msgauthMessage(err)
	for _, p := range permReasons {
		if !strings.HasPrefix(m, p.prefix) {
			continue
		}
		if p.reason == reasonShortKey && errors.Is(key.err, dkimkey.ErrKeyTooSmall) {
			// "RSA key shorter than 1024 bits: 512 bits (RFC 8301)"
			return unwrapText(key.err, dkimkey.ErrKeyTooSmall) + " (RFC 8301)"
		}
		return p.reason
	}
	return m
}

const reasonShortKey = "RSA key shorter than 1024 bits (RFC 8301)"

var permReasons = [...]struct{ prefix, reason string }{
	{"hash algorithm too weak", "rsa-sha1 not accepted (RFC 8301)"},
	{"key is too short", reasonShortKey},
	{"no key for signature", "key not found"},
	{"no valid key found", "key not found"},
	{"key revoked", "key revoked"},
	{"multiple TXT records found for key", "more than one key record"},
	{"key syntax error", "invalid key record"},
	{"key record error", "invalid key record"},
	{"incompatible public key version", "invalid key record"},
	{"unsupported key algorithm", "unsupported key type"},
	{"invalid Ed25519 public key size", "invalid key record"},
	{"signature has expired", "signature expired"},
	{"From field not signed", "From not signed"},
	{"domain mismatch", "i= not within d="},
	{"inappropriate hash algorithm", "hash not allowed by key h="},
	{"inappropriate key algorithm", "a= does not match key type"},
	{"inappropriate service", "key not for email (s=)"},
	{"unsupported hash algorithm", "unsupported algorithm"},
	{"malformed algorithm name", "unsupported algorithm"},
	{"unsupported public key query method", "unsupported q= method"},
	{"unsupported header canonicalization", "unsupported canonicalization"},
	{"unsupported body canonicalization", "unsupported canonicalization"},
	{"malformed", "malformed signature"},
	{"incompatible signature version", "unsupported version"},
	{"signature missing required tag", "missing required tag"},
}

// unwrapText returns the part of err's text from sentinel's text on.
func unwrapText(err, sentinel error) string {
	m := err.Error()
	if i := strings.Index(m, sentinel.Error()); i >= 0 {
		return m[i:]
	}
	return sentinel.Error()
}

// reasonOf gives the short reason for one of our own errors.
func reasonOf(err error) string {
	m := err.Error()
	if i := strings.Index(m, ": "); i >= 0 && errors.Is(err, ErrMalformed) {
		return "malformed signature: " + m[i+2:]
	}
	return m
}
