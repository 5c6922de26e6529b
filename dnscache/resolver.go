package dnscache

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// Resolver is the DNS interface every verifier takes. Each call carries a
// context whose deadline bounds the lookup.
//
// A successful call returns at least one record. Failures are always a
// *net.DNSError (so that libraries which classify errors by type assertion,
// such as go-msgauth, see the right flags) that unwraps to one of
// ErrNXDomain, ErrNoData or ErrTemporary:
//
//   - NXDOMAIN: IsNotFound set, errors.Is(err, ErrNXDomain).
//   - NODATA (the name exists, no record of the type): IsNotFound set,
//     errors.Is(err, ErrNoData).
//   - SERVFAIL, REFUSED, timeout, unreachable server, malformed reply:
//     IsTemporary set (and IsTimeout for timeouts), errors.Is(err, ErrTemporary).
type Resolver interface {
	// LookupTXT returns the TXT records at name, the character-strings of
	// each record joined without separator (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
	LookupTXT(ctx context.Context, name string) ([]string, AnswerInfo, error)
	// LookupA returns the IPv4 addresses of name.
	LookupA(ctx context.Context, name string) ([]netip.Addr, AnswerInfo, error)
	// LookupAAAA returns the IPv6 addresses of name.
	LookupAAAA(ctx context.Context, name string) ([]netip.Addr, AnswerInfo, error)
	// LookupMX returns the MX records of name in the order received.
	LookupMX(ctx context.Context, name string) ([]MX, AnswerInfo, error)
	// LookupPTR returns the names of addr's reverse (PTR) records.
	LookupPTR(ctx context.Context, addr netip.Addr) ([]string, AnswerInfo, error)
}

// MX is one mail exchanger record.
type MX struct {
	Host string // absolute name, without the trailing dot
	Pref uint16
}

// AnswerInfo carries the facts of a lookup beyond its records.
type AnswerInfo struct {
	// Authentic reports that the answer carried the AD bit from an upstream
	// configured as a trusted, validating resolver (or came from a local zone
	// file).
	Authentic bool
}

// Sentinel errors. Every error a Resolver returns unwraps to exactly one.
var (
	ErrNXDomain  = errors.New("no such domain")
	ErrNoData    = errors.New("no record of the requested type")
	ErrTemporary = errors.New("temporary DNS failure")
)

// NewError returns the *net.DNSError for a failed lookup of name, with the
// flags set from kind (one of the sentinel errors) and detail as its text.
// timeout marks a temporary failure as a timeout.
func NewError(kind error, name, server, detail string, timeout bool) *net.DNSError {
	e := &net.DNSError{Name: name, Server: server, UnwrapErr: kind}
	switch kind {
	case ErrNXDomain:
		e.IsNotFound = true
		e.Err = "no such host"
	case ErrNoData:
		e.IsNotFound = true
		e.Err = "no record of the requested type"
	default:
		e.IsTemporary = true
		e.IsTimeout = timeout
		e.Err = "temporary failure"
	}
	if detail != "" {
		e.Err += ": " + detail
	}
	return e
}

// IsNotFound reports whether err means the record does not exist
// (NXDOMAIN or NODATA).
func IsNotFound(err error) bool {
	return errors.Is(err, ErrNXDomain) || errors.Is(err, ErrNoData)
}

// IsTemporary reports whether err is a temporary DNS failure.
func IsTemporary(err error) bool {
	return errors.Is(err, ErrTemporary)
}

// ReverseName returns the in-addr.arpa or ip6.arpa name for addr, without
// the trailing dot. IPv4-mapped IPv6 addresses are treated as IPv4.
func ReverseName(addr netip.Addr) string {
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		return itoa(b[3]) + "." + itoa(b[2]) + "." + itoa(b[1]) + "." + itoa(b[0]) + ".in-addr.arpa"
	}
	const hex = "0123456789abcdef"
	b := addr.As16()
	out := make([]byte, 0, 72)
	for i := len(b) - 1; i >= 0; i-- {
		out = append(out, hex[b[i]&0xf], '.', hex[b[i]>>4], '.')
	}
	return string(out) + "ip6.arpa"
}

func itoa(b byte) string {
	if b >= 100 {
		return string([]byte{'0' + b/100, '0' + b/10%10, '0' + b%10})
	}
	if b >= 10 {
		return string([]byte{'0' + b/10, '0' + b%10})
	}
	return string([]byte{'0' + b})
}
