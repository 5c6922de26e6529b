package dkim

import "errors"

// Errors carried in Signature.Err, grouped by the step of RFC 6376 §6.1
// that finds them. Key lookup and key record errors are wrapped as
// internal/dkimkey reports them (a temporary DNS failure unwraps to
// dnscache.ErrTemporary). Match these with errors.Is.
var (
	// ErrMalformed: the DKIM-Signature field is not a valid tag-list,
	// lacks a required tag, or breaks the tag rules it shares with ARC
	// (internal/sigfield: d=, s=, b=, bh=, t=, x=, l= syntax) (RFC 6376
	// §3.5, §6.1.1). Gives permerror.
	ErrMalformed = errors.New("malformed DKIM-Signature")

	// ErrNotChecked: the signature was past Options.MaxSignatures
	// (RFC 6376 §6.1 lets a verifier limit the signatures it checks).
	// Gives policy.
	ErrNotChecked = errors.New("signature not checked")

	// ErrBodyLength: the signature has an l= tag, which this verifier does
	// not accept (RFC 6376 §8.2). Gives policy.
	ErrBodyLength = errors.New("l= body length limit not accepted")

	// ErrExpired: x= is before Options.Now (RFC 6376 §3.5), or before t=.
	// Gives permerror.
	ErrExpired = errors.New("signature expired")

	// ErrDomainMismatch: the i= domain is not d= or a subdomain of it
	// (RFC 6376 §6.1.1). Gives permerror.
	ErrDomainMismatch = errors.New("i= not within d=")

	// ErrFromNotSigned: h= does not list From (RFC 6376 §6.1.1). Gives
	// permerror.
	ErrFromNotSigned = errors.New("From field not signed")

	// ErrQueryMethod: q= does not offer dns/txt (RFC 6376 §3.5, §6.1.1).
	// Gives permerror.
	ErrQueryMethod = errors.New("unsupported q= query method")

	// ErrAlgorithm: a= is not rsa-sha256 or ed25519-sha256 (RFC 6376
	// §3.3, RFC 8463), does not match the key's k=, or its hash is not in
	// the key's h= (RFC 6376 §6.1.2). Gives permerror.
	ErrAlgorithm = errors.New("unsupported or inappropriate algorithm")

	// ErrWeakAlgorithm: a= is rsa-sha1, which RFC 8301 §3.1 forbids
	// verifiers to accept. Gives permerror.
	ErrWeakAlgorithm = errors.New("rsa-sha1 not accepted (RFC 8301)")

	// ErrCanonicalization: c= names an unknown algorithm (RFC 6376 §3.4).
	// Gives permerror.
	ErrCanonicalization = errors.New("unsupported canonicalization")

	// ErrBodyHash: the body hash does not match bh= (RFC 6376 §6.1.3).
	// Gives fail.
	ErrBodyHash = errors.New("body hash did not verify")

	// ErrSignature: the signature does not verify over the header hash
	// (RFC 6376 §6.1.3). Gives fail.
	ErrSignature = errors.New("signature did not verify")

	// ErrStrictIdentity: the key has t=s and the i= domain is not exactly
	// d= (RFC 6376 §3.6.1). Gives permerror.
	ErrStrictIdentity = errors.New("key t=s requires the i= domain to equal d=")

	// ErrUnfinished: the context ended before the signature was verified.
	// Gives temperror.
	ErrUnfinished = errors.New("verification did not finish in time")

	// ErrAborted is returned by Write after Abort.
	ErrAborted = errors.New("dkim: verification aborted")
	// ErrClosed is returned by Write after Close.
	ErrClosed = errors.New("dkim: write after close")
)
