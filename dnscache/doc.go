// Package dnscache is authmilter's one DNS layer: the Resolver interface
// every verifier takes, a caching client built on github.com/miekg/dns, and
// a static zone-file override.
//
// Nothing else in the project imports miekg/dns. Errors are *net.DNSError
// values that unwrap to ErrNXDomain, ErrNoData or ErrTemporary, so callers
// branch with errors.Is and libraries that type-assert (go-msgauth) see the
// right IsNotFound/IsTemporary/IsTimeout flags.
//
// The pieces, from the wire up:
//
//   - Client asks the upstream recursive resolvers (UDP with EDNS0, TCP
//     after truncation, every server in turn, Config.Attempts rounds),
//     follows the CNAMEs in the answer and maps response codes to the
//     error contract. A reply over Config.MaxAnswerBytes is refused as a
//     temporary failure. It reports TTLs, including the RFC 2308 negative TTL.
//   - Cache keeps answers for their TTL in a size-bounded LRU, negative
//     answers per RFC 2308 and temporary failures briefly, and collapses
//     concurrent identical lookups into one query.
//   - Zone answers from an RFC 1035 master file; Overlay puts it in front
//     of another Resolver for the names it covers.
//   - New wires the three as the daemon runs them; TXTFunc adapts a
//     Resolver to go-msgauth.
//
// A context from WithCacheOnly puts these resolvers in cache-only mode: they
// answer only from memory (cache entries, the zone) and fail at once, recording
// the miss, where they would ask the network. Callers use it to do work
// synchronously when the cache is warm, and to start a goroutine only when a
// lookup must wait for a server.
//
// Names are checked before any query: lower-cased, and refused with an
// NXDOMAIN error (nothing is sent) when they cannot be DNS names (an empty
// label, a label over 63 octets, over 253 octets, or bytes outside
// printable ASCII). RFC 7208 §4.3 has SPF treat such names as non-existent,
// and for DKIM and DMARC a missing record is the right outcome too.
// Internationalised names must be converted to A-labels by the caller.
package dnscache
