// Package audit checks the DNS records a sending domain publishes for email
// authentication — SPF (RFC 7208), DMARC (RFC 9989, reports RFC 9990), DKIM
// keys (RFC 6376), MX (RFC 7505 null MX), MTA-STS (RFC 8461), TLS-RPT
// (RFC 8460) and BIMI — with the same parsers the milter judges mail with.
//
// Domain runs every check for one domain and returns a Report: one Check per
// finding, each with a stable id (spf.record, spf.lookups, spf.all, spf.ptr,
// dmarc.record, dmarc.policy, dmarc.deprecated, dmarc.rua, dkim.key,
// dkim.key_match, mx, mta_sts, tls_rpt, bimi), a Status and, for anything
// that is not a pass, one sentence on how to fix it. The checks run
// concurrently, each group under its own timeout; a temporary DNS failure
// is a warn saying the record could not be checked, never a missing record.
//
// A domain argument that is no domain name gives a single failed check with
// the id "domain"; ParseDomain lets a caller refuse it first.
//
// The package reads no configuration and keeps no state: callers pass the
// resolver, the HTTP client for MTA-STS policies, the clock and the keys.
package audit
