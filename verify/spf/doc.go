// Package spf implements the Sender Policy Framework, RFC 7208: the
// check_host() function of §4 and everything it relies on — record lookup
// and selection (§4.4, §4.5), the record grammar (§4.6, §12), every
// mechanism (§5) and modifier (§6), macro expansion (§7) and the processing
// limits of §4.6.4.
//
// Verify checks the MAIL FROM identity (RFC 7208 §2.4; for a null
// reverse-path, postmaster@<HELO>), VerifyHELO the HELO identity (§2.3).
// Both take every DNS answer from a dnscache.Resolver and never read the
// clock except through Options.Now, so tests drive them from a map. They
// keep no state between calls and are safe for concurrent use when the
// resolver is; every lookup takes the caller's context, whose deadline is
// the time limit §4.6.4 asks for (an ended context gives temperror).
//
// A Result carries the RFC 7208 §2.6 result in the vocabulary of package
// verify, the identity and domain checked, the term that decided, the
// explanation of a fail (§6.2) and, for none, temperror and permerror, an
// error that names the cause; match it with errors.Is against the sentinel
// errors of this package.
//
// Choices where RFC 7208 leaves room, each cited where the code decides:
//
//   - The whole record is parsed before any term is evaluated, so a syntax
//     error after a matching mechanism still gives permerror (§4.6).
//   - Terms are counted as they are evaluated, not in advance (§4.6.4).
//   - A target name that is invalid after macro expansion and the cut to
//     253 octets of §7.3 (an empty label, a label over 63 octets, or an
//     expansion over 8192 octets) is treated as non-existent: a, mx, ptr and
//     exists do not match, include and redirect give permerror (§4.8, §5,
//     §4.3). The suite accepts fail or permerror for these cases.
//   - The void-lookup limit (§4.6.4) counts the a, mx and exists terms, in
//     the whole evaluation, whose query is answered NXDOMAIN or NODATA; PTR
//     answers are under the connecting client's control and are not
//     counted, nor is the exp= lookup (§6.2).
//   - More than 10 MX records is a permerror even if an earlier exchanger
//     would match; of the PTR names, the first 10 are used (§4.6.4).
//   - %{p} (§7.3) does not count as a DNS-querying term of its own: the term
//     that contains it is already counted.
//   - A non-ASCII domain is not converted to A-labels here (RFC 7208 §4.3
//     asks for A-labels): callers pass A-labels, anything else gives none.
package spf
