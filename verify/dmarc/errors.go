package dmarc

import (
	"errors"
	"fmt"
)

// Errors carried in Result.Err, grouped by phase. Match them with errors.Is.
var (
	// Author Domain extraction (RFC 9989 §5.3.1). All give permerror.
	ErrNoFrom         = errors.New("dmarc: no From header field")
	ErrNoAuthor       = errors.New("dmarc: no author address in the From header field")
	ErrFromSyntax     = errors.New("dmarc: unparseable From header field")
	ErrAuthorDomain   = errors.New("dmarc: invalid author domain")
	ErrTooManyAuthors = errors.New("dmarc: too many author domains")

	// Lookups. ErrDNS gives temperror; the DNS error it wraps unwraps to
	// dnscache.ErrTemporary.
	ErrDNS = errors.New("dmarc: DNS lookup failed")
	// ErrIdentifierTemperror: no identifier aligned, and an SPF or DKIM
	// temperror was for one that could have (RFC 9989 §5.3.6). It wraps
	// ErrDNS (temperror), but no DNS error: the lookup that failed was
	// SPF's or DKIM's.
	ErrIdentifierTemperror = fmt.Errorf("%w: temperror of an identifier that could align", ErrDNS)

	// Evaluation. ErrNoValidPolicy gives permerror (RFC 9989 §4.10.1).
	ErrNoValidPolicy = errors.New("dmarc: record has no valid policy and no valid rua")
)
