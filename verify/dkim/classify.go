package dkim

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/internal/dkimkey"
	"github.com/authmilter/authmilter/verify"
)

// outcome gathers what is known about one signature when the body ends.
type outcome struct {
	sig     *sigState
	checked bool // within Options.MaxSignatures
	keyDone bool // the key lookup ended before the context did
}

// classify verifies one signature and turns the outcome into a Signature.
// The order of the checks is the order of RFC 6376 §6.1: the signature
// field (§6.1.1), the key (§6.1.2), then the hashes (§6.1.3).
func classify(in outcome, max int, now time.Time) Signature {
	s := in.sig
	st := s.tags
	var out Signature
	st.fill(&out)
	var key *dkimkey.Key
	var keyErr error
	if in.keyDone {
		key, keyErr = s.key.Result()
	}
	if key != nil {
		out.KeyBits = key.Bits
		out.KeyTesting = key.Testing()
		out.KeyStrict = key.Strict()
	}
	set := func(r verify.Status, reason string, err error) Signature {
		out.Status, out.Reason = r, reason
		if err != nil {
			out.Err = fmt.Errorf("dkim: d=%s s=%s: %w", out.Domain, out.Selector, err)
		}
		return out
	}
	perm := func(err error) Signature { return set(verify.StatusPermerror, reasonOf(err), err) }

	// §6.1.1: the signature field.
	switch {
	case s.parseErr != nil:
		// A signature that does not parse, or lacks a required tag, is
		// PERMFAIL.
		return perm(s.parseErr)
	case !in.checked:
		// §6.1: a verifier MAY limit the signatures it checks; the
		// others are reported, not dropped.
		reason := fmt.Sprintf("not checked: more than %d signatures", max)
		return set(verify.StatusPolicy, reason, fmt.Errorf("%w: more than %d signatures", ErrNotChecked, max))
	case s.checkErr != nil:
		return perm(s.checkErr)
	case st.expired(now):
		// §6.1.1: "Verifiers MAY ignore the DKIM-Signature header field
		// and return PERMFAIL (signature expired)".
		return set(verify.StatusPermerror, "signature expired", fmt.Errorf("%w: x=%d", ErrExpired, st.expiry))
	}

	// §6.1.2: the key.
	switch {
	case !in.keyDone:
		return set(verify.StatusTemperror, "verification not finished in time", ErrUnfinished)
	case dnscache.IsTemporary(keyErr):
		// Step 2: the query timed out or failed temporarily: TEMPFAIL.
		return set(verify.StatusTemperror, "key lookup failed temporarily", keyErr)
	case keyErr != nil:
		// Steps 3, 4 and 6: no key, a key record that does not parse, a
		// revoked key; and RFC 8301 §3.2's minimum RSA size.
		return set(verify.StatusPermerror, keyReason(keyErr), keyErr)
	}
	keyAlg, hashAlg := st.algorithms()
	switch {
	case !key.AllowsHash(hashAlg):
		// Step 5: the key's h= does not list the hash of a=.
		return set(verify.StatusPermerror, "hash not allowed by key h=",
			fmt.Errorf("%w: %w", ErrAlgorithm, dkimkey.ErrHashNotAllowed))
	case hashAlg == "sha1" && keyAlg == "rsa":
		// RFC 8301 §3.1: rsa-sha1 MUST NOT be considered valid.
		return perm(ErrWeakAlgorithm)
	case hashAlg != "sha256" || keyAlg != "rsa" && keyAlg != "ed25519":
		return set(verify.StatusPermerror, "unsupported algorithm", fmt.Errorf("%w: a=%s", ErrAlgorithm, st.algorithm))
	case keyAlg != key.Type:
		// Step 7: the key is not for the algorithm of a= (RFC 8463 §4.1
		// for ed25519).
		return set(verify.StatusPermerror, "a= does not match key type",
			fmt.Errorf("%w: a=%s with a k=%s key", ErrAlgorithm, st.algorithm, key.Type))
	case st.canonErr != nil:
		return perm(fmt.Errorf("%w: %v", ErrCanonicalization, st.canonErr))
	case st.hasLength:
		// RFC 6376 §8.2: content can be appended past l=; we do not
		// accept such a signature, and say so with policy rather than
		// fail (the signature may well be valid for what it covers).
		return set(verify.StatusPolicy, ErrBodyLength.Error(), ErrBodyLength)
	}
	bh, sig := st.bodyHash, st.sig // decoded by parseSignature

	// §6.1.3: the hashes.
	if !bytes.Equal(s.body.Sum(), bh) {
		return set(verify.StatusFail, "body hash mismatch", ErrBodyHash)
	}
	// RSASSA-PKCS1-v1_5 over the SHA-256 of the header data (RFC 6376
	// §3.3.1), or for an ed25519 key, Ed25519 over that SHA-256 digest
	// (RFC 8463 §3): the key type decides.
	if err := key.Verify(crypto.SHA256, s.digest[:], sig); err != nil {
		return set(verify.StatusFail, "signature mismatch", ErrSignature)
	}
	// RFC 6376 §3.6.1 t=s: the i= domain MUST be d= itself, not a
	// subdomain. Only a signature that verifies is judged on it.
	if key.Strict() && !st.idName.Equal(st.name) {
		return set(verify.StatusPermerror, "i= not in d= itself (key t=s)", ErrStrictIdentity)
	}
	return set(verify.StatusPass, "", nil)
}

// keyReason names a key problem (RFC 6376 §6.1.2, RFC 8301 §3.2).
func keyReason(err error) string {
	switch {
	case errors.Is(err, dkimkey.ErrNoKey):
		return "key not found"
	case errors.Is(err, dkimkey.ErrRevoked):
		return "key revoked"
	case errors.Is(err, dkimkey.ErrKeyTooSmall):
		// "RSA key shorter than 1024 bits: 512 bits (RFC 8301)"
		return unwrapText(err, dkimkey.ErrKeyTooSmall) + " (RFC 8301)"
	case errors.Is(err, dkimkey.ErrKeyType):
		return "unsupported key type"
	case errors.Is(err, dkimkey.ErrService):
		return "key not for email (s=)"
	case errors.Is(err, dkimkey.ErrSyntax), errors.Is(err, dkimkey.ErrVersion), errors.Is(err, dkimkey.ErrBadKey):
		return "invalid key record"
	}
	return "key lookup failed"
}

// unwrapText returns the part of err's text from sentinel's text on.
func unwrapText(err, sentinel error) string {
	m := err.Error()
	if i := strings.Index(m, sentinel.Error()); i >= 0 {
		return m[i:]
	}
	return sentinel.Error()
}

// reasonOf gives the short reason for one of this package's errors:
// "malformed signature: ..." for ErrMalformed, the sentinel's words
// otherwise.
func reasonOf(err error) string {
	m := err.Error()
	if errors.Is(err, ErrMalformed) {
		if i := strings.Index(m, ": "); i >= 0 {
			return "malformed signature: " + m[i+2:]
		}
		return "malformed signature"
	}
	for _, r := range shortReasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return m
}

// shortReasons are the Signature.Reason words of the permanent errors, as
// go-msgauth-based versions of this package reported them.
var shortReasons = [...]struct {
	err    error
	reason string
}{
	{ErrWeakAlgorithm, "rsa-sha1 not accepted (RFC 8301)"},
	{ErrDomainMismatch, "i= not within d="},
	{ErrFromNotSigned, "From not signed"},
	{ErrQueryMethod, "unsupported q= method"},
	{ErrCanonicalization, "unsupported canonicalization"},
}
