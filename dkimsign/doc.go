// Package dkimsign adds DKIM signatures (RFC 6376) to outbound mail.
//
// Sign writes one DKIM-Signature per Key over a message's header fields and
// the relaxed/sha256 hash of its body (which the caller computes in its one
// pass over the body with internal/canon, the verifier's canonicaliser, and
// which ARC sealing shares: an ARC-Message-Signature hashes the body the
// same way). Every signature is c=relaxed/relaxed, has t= and, when an
// expiry is set, x=, and never l= (a length limit lets anyone append text
// under the signature, RFC 6376 §8.2). Keys are RSA (a=rsa-sha256; RFC 8301
// §3.2: at least 1024 bits, 2048 recommended) or Ed25519 (a=ed25519-sha256,
// RFC 8463).
//
// h= lists the fields of Options.Headers that are present, once per
// occurrence, and the fields of Options.Oversign once more than they occur
// (RFC 6376 §8.15: a field signed more times than it occurs cannot be added
// later without breaking the signature). From is always signed (§5.4).
//
// Table chooses the keys for a message from its From address: a list of
// {domain, selector, key file} entries (Load), and optionally OpenDKIM's
// KeyTable and SigningTable files (LoadOpenDKIM), read unchanged.
package dkimsign
