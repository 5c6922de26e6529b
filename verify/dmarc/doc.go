// Package dmarc implements DMARC evaluation: RFC 9989 (Domain-based Message
// Authentication, Reporting, and Conformance, which obsoletes RFC 7489 and
// RFC 9091), with the RFC 7489 behaviours still met in the wild.
//
// Evaluate takes the From header fields of a message, its SPF result and
// its DKIM results, discovers the DMARC Policy Record through a
// dnscache.Resolver, checks identifier alignment and returns a Result in
// the vocabulary of RFC 9989 §9.2 (pass, fail, none, temperror, permerror)
// with the published policy and the disposition to apply. ParseRecord
// parses DMARC Policy Records (§4.7, §4.8) tolerantly.
//
// Section numbers are those of draft-ietf-dmarc-dmarcbis-41, the text
// approved as RFC 9989.
//
// # Organizational Domains
//
// Both methods sit behind OrgDomainFinder; alignment always compares
// Organizational Domains from the same one:
//   - TreeWalk (default): the DNS Tree Walk of RFC 9989 §4.10, at most eight
//     _dmarc queries, stopping at psd=y or psd=n; the Organizational Domain
//     is selected by §4.10.2, the policy by §4.10.1 (Author Domain, then
//     Organizational Domain, then Public Suffix Domain). Several DMARC
//     records at one name are discarded and the walk goes on (§4.10 step 2).
//   - PSL: RFC 7489 §3.2 with golang.org/x/net/publicsuffix (ICANN and
//     PRIVATE sections, see PSL), policy by RFC 7489 §6.6.3 (Author Domain,
//     then Organizational Domain). Several DMARC records at the name reached
//     end discovery with no policy (§6.6.3 step 5).
//
// # Decisions
//
// Where the RFCs leave a choice or are unclear, this package decides:
//
//   - Record without a valid p. RFC 9989 §4.7 says a missing p is treated as
//     p=none; §4.10.1, which it refers to, is more precise: a record without
//     a valid p, or with an invalid sp or np, is treated as p=none when it
//     has at least one syntactically valid rua URI, and otherwise "the Mail
//     Receiver applies no DMARC processing". The second case gives
//     permerror (§9.2: "an improperly formatted DMARC Policy Record") with
//     Disposition none; the first applies p=none to the Author Domain and
//     its subdomains, noted in Result.RecordNote.
//   - Other syntax errors are ignored in favour of defaults (§4.8); unknown
//     tags are ignored (§4.7); a duplicated tag keeps its first value. Tag
//     names and the values of p, sp, np, psd, t, adkim and aspf are
//     case-insensitive (ABNF strings, RFC 5234 §2.3); "DMARC1" is
//     case-sensitive (§4.8 %s"DMARC1").
//   - np applies when the Author Domain is a subdomain of the Policy Domain
//     and does not exist: RFC 9989 §3.2.13 and Appendix A.4 define a
//     non-existent domain as one whose query is answered NXDOMAIN (RFC 8020);
//     NODATA means it exists. One A query for the Author Domain decides,
//     made only when the record has an np tag (without one, sp or p applies
//     either way, §4.7), before alignment. RFC 9091's test (NXDOMAIN or
//     NODATA for A, AAAA and MX) is obsolete.
//   - pct (RFC 7489 §6.3, §6.6.4; removed by RFC 9989 Appendix A.6) is
//     still honoured: a failing message outside the sample gets the next
//     less strict disposition (reject→quarantine, quarantine→none). t=y (RFC
//     9989 §4.7) does the same for every failing message; a record with t=y
//     is not also sampled, so a disposition is lowered at most one step.
//   - From: no From field, no address in it, an unparseable field or an
//     invalid domain give permerror (RFC 9989 §4.4 and §5.3.1 put such
//     messages outside DMARC; permerror tells the caller no verdict was
//     possible). Display-name junk does not hide the address: a tolerant
//     scanner backs up net/mail. U-labels are converted to A-labels (§5.3.1)
//     by this package's own Punycode encoder (idn.go): golang.org/x/net/idna
//     would need golang.org/x/text, which go.mod does not require.
//   - Several Author Domains (several addresses, or several From fields
//     with different domains): each is evaluated and the strictest result
//     returned, as RFC 7489 §6.6.1 and RFC 9989 §11.5 recommend, so the
//     message passes only if every Author Domain passes; more than
//     Options.MaxAuthorDomains gives permerror (§11.5: limit the number
//     processed). Several From fields with one domain are evaluated as one,
//     and Reason says so.
//   - DNS: a temporary failure during discovery gives temperror (§5.3.6).
//     During alignment it does only when no identifier aligned and the
//     failure could have changed that; likewise an SPF or DKIM temperror
//     for an identifier that could align. An identifier outside the Author
//     Domain's Organizational Domain cannot align whatever its DNS says,
//     so nothing is looked up for it (§4.10.2): a sender's own DNS never
//     turns fail into temperror.
//   - The tree walk asks the names it may need (at most eight, §4.10) at
//     once and decides from the answers in walk order, exactly as if it
//     had asked them one by one: the same records, the same stop, the same
//     first error. When the walk stops early (a psd= record, a failure) the
//     answers beyond the stop were asked for nothing, but never more names
//     than a walk that does not stop early asks. One round trip instead of
//     up to eight; TreeWalk{Sequential: true} asks one at a time. With the
//     answers in memory (a warm cache) the walk runs sequentially on the
//     caller's goroutine.
//   - SPF: the identifier is the MAIL FROM domain, or the HELO domain when
//     MAIL FROM is null (RFC 9989 §3.2.4, RFC 7208 §2.4); the caller says
//     which in SPF.Identity.
package dmarc
