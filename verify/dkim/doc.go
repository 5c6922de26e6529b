// Package dkim verifies DomainKeys Identified Mail signatures: RFC 6376,
// with the cryptographic updates of RFC 8301 (no rsa-sha1, RSA keys of at
// least 1024 bits) and the Ed25519 algorithm of RFC 8463.
//
// Verification is done here, on the module's shared pieces: the tag-list
// parser (internal/tagvalue), canonicalisation and body hashing
// (internal/canon) and key records (internal/dkimkey), which ARC
// validation uses too. Earlier versions wrapped
// github.com/emersion/go-msgauth/dkim, fed through a pipe; doing the work
// here gives:
//
//   - one pass over the body: each body hash is a canon.BodyHasher taken
//     from a canon.BodySet, which signatures — and, through
//     NewVerifierWithBody, the ARC-Message-Signatures of the same message —
//     share whenever they have the same canonicalisation, hash and length;
//     the body is never held in memory;
//   - streaming without a goroutine and a pipe per message: Write hashes on
//     the caller's goroutine and never waits for DNS, since the key lookups
//     start at NewVerifier (one per distinct key, at most
//     Options.MaxSignatures): answered at once by a resolver that has the
//     key in memory (dnscache.HonoursCacheOnly), in the background otherwise;
//   - the facts of each signature at hand: d=, i=, s=, a=, the full b=
//     value, the key size and the key's t=y and t=s flags, as an
//     Authentication-Results header needs them (RFC 8601 §2.7.1), and a
//     reason for each verdict from the step of RFC 6376 §6.1 that made it.
//
// go-msgauth stays in the tests as a differential oracle.
//
// NewVerifier, Write and Close serve a milter that sees a message in
// pieces; Verify reads a whole message.
//
// Results (RFC 8601 §2.7.1, RFC 6376 §6.1), checked in the order of RFC
// 6376 §6.1.1 (the signature), §6.1.2 (the key), §6.1.3 (the hashes):
//
//   - pass: the signature verifies.
//   - fail: the body hash or the signature does not verify.
//   - permerror: the signature cannot be verified and never will: it does
//     not parse or lacks a required tag, v= is not 1, i= is not within d=,
//     h= does not list From, q= does not offer dns/txt, the signature has
//     expired (x=), the key is missing, revoked or invalid, its h= does not
//     allow the hash, its type does not match a=, the algorithm or c= is
//     unsupported, rsa-sha1 or an RSA key under 1024 bits (RFC 8301 §3.1,
//     §3.2), or the key's t=s flag is not met.
//   - temperror: the key lookup failed temporarily (SERVFAIL, timeout) or
//     the context ended before the key arrived.
//   - policy: see l= and the signature cap below.
//
// Choices:
//
//   - l= (body length, RFC 6376 §3.5): content appended after the signed
//     length would ride on the signature (RFC 6376 §8.2), so a signature
//     with l= is not accepted. It is reported as policy with the reason
//     "l= body length limit not accepted" rather than fail, because the
//     signature may well be valid for what it covers: the verifier refuses
//     it, it did not find it broken. Its body is not hashed. A key or
//     algorithm problem found before (§6.1.2) is reported instead.
//   - Signature cap: RFC 6376 §6.1 lets a verifier limit the signatures it
//     checks. The first Options.MaxSignatures (default 5) in header order
//     are verified; each one after them is reported as policy with the
//     reason "not checked: more than N signatures", never dropped. The
//     header is taken whole, so a signature that covers another
//     DKIM-Signature field still verifies.
//   - Signature.B is the whole b= value without whitespace; the
//     Authentication-Results formatter picks the RFC 6008 header.b prefix
//     that makes it unique among the message's signatures.
//   - x= (expiry) is checked against Options.Now, read when the body ends,
//     and nothing else: a test or a replay can set the clock.
//   - t=y (testing) does not change the result; it is reported in
//     Signature.KeyTesting for the caller's policy (RFC 6376 §3.6.1). t=s
//     turns a signature that verifies into permerror when the i= domain is
//     a subdomain of d=.
//   - A DKIM-Signature that does not parse with the RFC 6376 §3.2 tag-list
//     grammar (including duplicate tags) is permerror.
//   - Of several TXT records at a key's name, the first that parses is
//     used (RFC 6376 §3.6.2.2 leaves the case undefined).
//   - DomainKeys (RFC 4870) DomainKey-Signature fields are not DKIM and
//     are ignored: a message with only those has no results.
//
// Every lookup uses the context given to NewVerifier, and Close does not
// wait past its end; Abort waits for the lookups, which the cancelled
// context ends at once.
package dkim
