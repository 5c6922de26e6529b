// Package engine judges messages: it runs the verifiers (SPF, DKIM, DMARC,
// ARC) on one message, applies the local policy, and returns a Verdict
// with the action and the header changes. The milter server (Handler, in
// milter.go) and the `authmilter check` command drive it alike, so a
// message is judged the same whichever way it comes in.
//
// An Engine holds what every message shares (resolver, authserv-id,
// options, policy); an Evaluation is one message. Work starts as soon as
// its inputs exist, at these stages:
//
//  1. Engine.Begin, at MAIL FROM: the client is checked against the
//     internal networks and authenticated users (Policy.Internal); for
//     other clients the SPF checks of MAIL FROM and HELO start
//     (RFC 7208 §2.3, §2.4), and, speculatively, the DMARC policy
//     discovery of the MAIL FROM domain, which the From domain usually is
//     or shares its Organizational Domain with (bounded by
//     Engine.SpeculativeQueries and SpeculativeTimeout).
//  2. Evaluation.AddRcpt and Evaluation.Header, for each recipient and
//     header field: fields are kept within the header limits, and
//     Authentication-Results fields that claim our authserv-id are noted
//     for removal (RFC 8601 §5).
//  3. Evaluation.EndOfHeaders: DKIM verification and ARC validation start
//     (their key lookups), and DMARC policy discovery for the From domains
//     (RFC 7489 §6.6.3).
//  4. Evaluation.Body, for each chunk: the body hashes that DKIM and ARC
//     share are fed.
//  5. Evaluation.End, at end of message: it waits (at most Engine.Timeout)
//     for the outstanding results, evaluates DMARC, applies the policy
//     (Policy.Decide), seals an ARC set when configured, and builds the
//     Authentication-Results field (and Received-SPF).
//
// Lookups whose DNS answers the resolver has in memory run then and there
// on the caller's goroutine; only those that need the network run in the
// background, behind the rest of the message. Evaluation.Abort releases a
// message the MTA abandoned.
package engine
