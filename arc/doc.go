// Package arc validates and seals Authenticated Received Chains (ARC,
// RFC 8617).
//
// # Validation
//
// NewValidator takes the header fields of a message, parses its ARC Sets
// (ARC-Authentication-Results, RFC 8617 §4.1.1; ARC-Message-Signature,
// §4.1.2; ARC-Seal, §4.1.3), checks their structure and starts the key
// lookups; the body is then streamed through Write and Close returns the
// verdict of the §5.2 algorithm:
//
//   - no ARC Sets: none;
//   - any malformed ARC header field, a missing or duplicated member of a
//     set, a gap in the instances 1..N, or N above the limit (50, §4.2.1):
//     fail;
//   - the newest ARC-Seal says cv=fail: fail, without any cryptography;
//   - cv= other than none at i=1 or pass at i>1: fail;
//   - the newest AMS does not verify (body hash or signature): fail;
//   - any ARC-Seal, newest first, does not verify over the ARC Sets up to
//     its own (§5.1.1 order, relaxed canonicalization): fail;
//   - otherwise pass, with oldest-pass (§5.2) computed from the older
//     AMSes.
//
// A temporary DNS failure (or the context's deadline) while fetching a key
// the verdict depends on gives temperror, not fail: the chain is not
// known to be broken. Keys are DKIM keys (internal/dkimkey), so RFC 8301
// applies (RSA of at least 1024 bits; no rsa-sha1) and ed25519-sha256
// (RFC 8463) is accepted.
//
// Decisions where readings differ (the ValiMail suite's disputed cases are
// listed, with reasons, in conformance_test.go):
//
//   - A missing AMS c= means simple/simple, as in DKIM (RFC 8617 §4.1.2
//     imports DKIM-Signature semantics; RFC 6376 §3.5).
//   - An AMS h= must name From (RFC 6376 §5.4, §6.1.1) and must not name
//     ARC-Seal (RFC 8617 §4.1.2); naming other ARC fields is tolerated, as
//     §5.2 has no step rejecting it. Empty names in h= ("a::b") select
//     nothing and are skipped.
//   - An ARC-Seal with h= is invalid (RFC 8617 §4.1.3).
//   - Tag names and values are case-sensitive, duplicate tags invalid (RFC
//     6376 §3.2), so "cv=Pass" or "A=1" make the chain fail.
//
// # Sealing
//
// Sealer.Seal adds ARC Set N+1 (§5.1): an ARC-Authentication-Results with
// the caller's results, an ARC-Message-Signature (relaxed/relaxed) over the
// chosen header fields and the body hash the Validator computed, and an
// ARC-Seal whose cv= follows the validation result (none, pass or fail).
// A chain whose newest seal already says cv=fail is not extended
// (ErrChainFailed); a failed chain otherwise gets one cv=fail seal that, as
// §5.1.2 requires, covers only the new ARC Set. LoadKey reads the signing
// key from a PEM file that must not be readable by group or others.
//
// RFC 8617 is Experimental and proposed for Historic in favour of DKIM2,
// but large mailbox providers still seal and consume ARC.
package arc
