// Package dkim verifies DomainKeys Identified Mail signatures: RFC 6376,
// with the cryptographic updates of RFC 8301 (no rsa-sha1, RSA keys of at
// least 1024 bits) and the Ed25519 algorithm of RFC 8463.
//
// The cryptography, canonicalisation and hashing are those of
// github.com/emersion/go-msgauth/dkim; this package feeds it the header and
// then the body in chunks through a pipe (the body is never held in
// memory), takes every key from a dnscache.Resolver bound to the message's
// context, and reports each signature with the facts an
// Authentication-Results header needs (RFC 8601 §2.7.1): d=, i=, s=, a=,
// the full b= value, the key size and the key's t=y and t=s flags.
// go-msgauth reports none of the latter, so the DKIM-Signature is also
// parsed here with the shared tag-list parser (internal/tagvalue) and each
// key looked up a second time with internal/dkimkey (a caching resolver
// answers it from the cache).
//
// NewVerifier, Write and Close serve a milter that sees a message in
// pieces; Verify reads a whole message.
//
// Results (RFC 8601 §2.7.1, RFC 6376 §6.1):
//
//   - pass: the signature verifies.
//   - fail: the body hash or the signature does not verify.
//   - permerror: the signature cannot be verified and never will: it does
//     not parse or lacks a required tag, the key is missing, revoked or
//     invalid, the algorithm is unsupported, rsa-sha1 or an RSA key under
//     1024 bits (RFC 8301 §3.1, §3.2), the signature has expired (x=), or
//     the key's t=s flag is not met.
//   - temperror: the key lookup failed temporarily (SERVFAIL, timeout) or
//     the context ended before the signature was verified.
//   - policy: see l= and the signature cap below.
//
// Choices:
//
//   - l= (body length, RFC 6376 §3.5): content appended after the signed
//     length would ride on the signature (RFC 6376 §8.2), so a signature
//     with l= is not accepted. It is reported as policy with the reason
//     "l= body length limit not accepted" rather than fail, because the
//     signature may well be valid for what it covers: the verifier refuses
//     it, it did not find it broken. (go-msgauth would say fail.)
//   - Signature cap: RFC 6376 §6.1 lets a verifier limit the signatures it
//     checks. The first Options.MaxSignatures (default 5) in header order
//     are verified; each one after them is reported as policy with the
//     reason "not checked: more than N signatures", never dropped. The
//     header is passed whole to go-msgauth (with its MaxVerifications),
//     so a signature that covers another DKIM-Signature field still
//     verifies.
//   - Signature.B is the whole b= value without whitespace; the
//     Authentication-Results formatter picks the RFC 6008 header.b prefix
//     that makes it unique among the message's signatures.
//   - x= (expiry) is checked against Options.Now. go-msgauth v0.7.0 also
//     checks it against the wall clock, which cannot be replaced: a
//     signature that has expired by either clock is permerror, so a clock
//     set in the past cannot revive an expired signature.
//   - t=y (testing) does not change the result; it is reported in
//     Signature.KeyTesting for the caller's policy (RFC 6376 §3.6.1).
//   - A DKIM-Signature that does not parse with the RFC 6376 §3.2 tag-list
//     grammar (including duplicate tags) is permerror even where
//     go-msgauth's more lenient parser would have accepted it.
//   - DomainKeys (RFC 4870) DomainKey-Signature fields are not DKIM and
//     are ignored: a message with only those has no results.
//
// Every lookup uses the context given to NewVerifier (go-msgauth's own
// lookup function takes no context, see dnscache.TXTFunc), and Close does
// not wait past its end.
package dkim
