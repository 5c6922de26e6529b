package audit

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strings"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/internal/tagvalue"
)

// ErrTLSRPT is wrapped by every TLS-RPT record parse error.
var ErrTLSRPT = errors.New("tls-rpt")

// TLSRPTRecord is a parsed _smtp._tls TXT record (RFC 8460 §3).
type TLSRPTRecord struct {
	RUA []string // report URIs, mailto: or https:
}

// IsTLSRPTRecord reports whether txt starts with "v=TLSRPTv1" (RFC 8460
// §3: other records are discarded).
func IsTLSRPTRecord(txt string) bool {
	v, _, _ := strings.Cut(txt, ";")
	k, val, ok := strings.Cut(v, "=")
	return ok && strings.TrimSpace(k) == "v" && strings.TrimSpace(val) == "TLSRPTv1"
}

// ParseTLSRPTRecord parses a TLS-RPT record (RFC 8460 §3):
//
//	tlsrpt-record = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
//	tlsrpt-rua    = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//
// with each URI mailto: (an address) or https: (a host).
func ParseTLSRPTRecord(txt string) (*TLSRPTRecord, error) {
	if !IsTLSRPTRecord(txt) {
		return nil, fmt.Errorf("%w: record does not start with v=TLSRPTv1", ErrTLSRPT)
	}
	tags, err := tagvalue.Parse(txt)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTLSRPT, err)
	}
	rua, ok := tags.Get("rua")
	if !ok {
		return nil, fmt.Errorf("%w: no rua=", ErrTLSRPT)
	}
	rec := &TLSRPTRecord{}
	for u := range strings.SplitSeq(rua, ",") {
		u = strings.TrimSpace(u)
		if err := checkReportURI(u); err != nil {
			return nil, fmt.Errorf("%w: rua: %w", ErrTLSRPT, err)
		}
		rec.RUA = append(rec.RUA, u)
	}
	return rec, nil
}

// checkReportURI accepts mailto:address and https://host/... URIs.
func checkReportURI(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("%q: %w", u, err)
	}
	switch strings.ToLower(p.Scheme) {
	case "mailto":
		addr, _, _ := strings.Cut(p.Opaque, "?")
		if addr, err = url.PathUnescape(addr); err != nil {
			return fmt.Errorf("%q: %w", u, err)
		}
		if _, err := mail.ParseAddress(addr); err != nil || !strings.Contains(addr, "@") {
			return fmt.Errorf("%q: %q is not a mail address", u, addr)
		}
		return nil
	case "https":
		if p.Host == "" {
			return fmt.Errorf("%q: no host", u)
		}
		return nil
	}
	return fmt.Errorf("%q: want a mailto: or https: URI", u)
}

// tlsRPT is the tls_rpt check (RFC 8460).
func (a *auditor) tlsRPT(ctx context.Context) []Check {
	name := "_smtp._tls." + a.domain
	fix := fmt.Sprintf(`Publish TXT "v=TLSRPTv1; rua=mailto:tls-reports@%s" at %s.`, a.domain, name)
	txts, _, err := a.r.LookupTXT(ctx, name)
	switch {
	case err != nil && dnscache.IsNotFound(err):
		return []Check{finding("tls_rpt", StatusInfo, fix, "no TLS-RPT record at %s: nobody reports TLS failures to you", name)}
	case err != nil:
		return []Check{unchecked("tls_rpt", "the TLS-RPT record", err)}
	}
	var recs []string
	for _, t := range txts {
		if IsTLSRPTRecord(t) {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return []Check{finding("tls_rpt", StatusInfo, fix, "no v=TLSRPTv1 record at %s", name)}
	case 1:
	default:
		return []Check{finding("tls_rpt", StatusFail, "Keep one v=TLSRPTv1 record.",
			"%d v=TLSRPTv1 records at %s: senders use none (RFC 8460 §3)", len(recs), name)}
	}
	rec, err := ParseTLSRPTRecord(recs[0])
	if err != nil {
		return []Check{finding("tls_rpt", StatusFail, fix, "%s: %q: %v", name, recs[0], err)}
	}
	return []Check{pass("tls_rpt", "%s: rua %s", name, strings.Join(rec.RUA, ", "))}
}
