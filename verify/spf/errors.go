package spf

import "errors"

// Errors carried in Result.Err, grouped by the phase that detects them.
// Match them with errors.Is.
var (
	// Inputs (RFC 7208 §4.3). Both give none.
	ErrInvalidIP     = errors.New("no valid client IP address")
	ErrInvalidDomain = errors.New("not a valid domain name")

	// Record retrieval and selection (§4.4, §4.5). ErrNoRecord gives none
	// (permerror for an include or redirect target, see below),
	// ErrMultipleRecords permerror.
	ErrNoRecord        = errors.New("no SPF record")
	ErrMultipleRecords = errors.New("more than one SPF record")

	// Lookups. ErrDNS gives temperror; the error it wraps unwraps to
	// dnscache.ErrTemporary, or to the context's error when the context
	// ended.
	ErrDNS = errors.New("DNS lookup failed")

	// Record syntax (§4.6, §5, §6, §7.1, §12). Every one gives permerror.
	ErrSyntax = errors.New("record syntax error")

	// Evaluation. Every one gives permerror.
	ErrTooManyLookups = errors.New("too many DNS-querying terms")       // §4.6.4
	ErrVoidLookups    = errors.New("too many void lookups")             // §4.6.4
	ErrTooManyMX      = errors.New("more than 10 MX records")           // §4.6.4
	ErrIncludeNone    = errors.New("include target has no SPF record")  // §5.2
	ErrRedirectNone   = errors.New("redirect target has no SPF record") // §6.1
)
