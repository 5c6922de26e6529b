// Package benchmail generates benchmark mail: messages in the classes an
// inbound authentication milter meets (SPF pass and fail, DKIM with RSA-2048
// and Ed25519, DMARC pass and fail under p=reject, p=quarantine and p=none,
// ARC chains of one and two hops, sealed by dkimpy, or by authmilter's own
// sealer on request: see ARCSealer) at nominal sizes of 2 KB, 20 KB and
// 200 KB, each with its SMTP envelope, and the RFC 1035 zone file that
// publishes every key and record they need, so that a milter can judge them
// without any DNS beyond that file.
//
// Everything derives from a seed: keys (RSA primes and Ed25519 seeds are
// drawn from a ChaCha8 stream), addresses, texts and dates. The one part
// that is not reproducible is the t= tag of DKIM-Signature fields, which
// go-msgauth stamps from the wall clock (and so the b= that covers it);
// dkimpy's ARC Sets take their t= from the corpus clock, but their layout
// is dkimpy's and may change with its version.
//
// All names live under the reserved top-level domain "example." (RFC 2606)
// plus the reverse zones of the documentation networks (RFC 5737), so that
// the zone covers every name a verifier asks for, including the DMARC tree
// walk up to the top-level domain (RFC 9989).
package benchmail
