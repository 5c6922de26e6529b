package dkim

import "errors"

// Errors carried in Signature.Err for the decisions this package makes
// itself. Errors reported by go-msgauth are wrapped as they come (its types
// are unexported; the Result field already classifies them). Match these
// with errors.Is.
var (
	// ErrMalformed: the DKIM-Signature field is not a valid tag-list or
	// lacks a required tag (RFC 6376 §3.5, §6.1.1). Gives permerror.
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
