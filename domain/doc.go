// Package domain is the one domain-name type of authmilter: a name parsed
// and validated once, kept in two forms, and compared by method.
//
// A Name holds the ASCII form (A-labels, RFC 5890 §2.3.2.1, lower case,
// without the trailing dot), which every DNS lookup and every comparison
// uses, and the Unicode form (U-labels), for people. RFC 8616 says which
// form email authentication uses: the A-label form for SPF's MAIL FROM and
// HELO identities and their macros (§4), for DKIM's d= and i= (§5) and for
// DMARC's policy lookup and alignment (§6), where a U-label and its A-label
// are the same domain.
//
// Parse accepts U-labels, A-labels, mixed case and a trailing dot. A name
// with a non-ASCII character or an A-label goes through the Lookup profile
// of golang.org/x/net/idna: UTS #46 mapping (case folding, NFC, the
// ideographic full stops as label separators) and validation (RFC 5891 §5,
// UTS #46 §4), and the A-labels it gives are decoded back to check that
// they round-trip. A plain ASCII name is checked here: labels of letters,
// digits, hyphens and, as real mail needs (DKIM selectors, _dmarc, sloppy
// HELO names), underscores. Both kinds then meet the length rules of
// RFC 1035 §2.3.4: labels of 1 to 63 octets, at most 253 octets in all.
//
// QueryName is the looser check for names a DNS query is made for, where
// RFC 7208 macros may put any printable character.
package domain
