package canon

import "crypto"

// BodySet hashes one message body for every signature that needs it, once
// per distinct (canonicalization, hash algorithm, length limit): a DKIM
// signature and an ARC-Message-Signature that share c=, a= and l= share
// one BodyHasher, so the body is canonicalised and hashed once per chunk
// whatever the number of signatures (RFC 6376 §3.7 and RFC 8617 §4.1.2
// define the same body hash).
//
// Consumers ask for their hashers with Hasher once the header is known
// and before the first body byte. The body then reaches the set either
// through Write, or through each consumer's own writes passed on with
// WriteFrom: every consumer counts the body bytes it was given, and the
// set hashes only the bytes no consumer has passed yet. This lets a
// caller write the same chunks to a DKIM verifier and an ARC validator
// that share a set without the body being hashed twice, provided every
// consumer sees the same body.
//
// A BodySet is not safe for concurrent use: its consumers must be fed
// from one goroutine at a time.
type BodySet struct {
	hashers []*BodyHasher
	keys    []bodyKey
	n       int64 // body octets hashed
}

type bodyKey struct {
	c     Canon
	h     crypto.Hash
	limit int64
}

// NewBodySet returns an empty set.
func NewBodySet() *BodySet { return &BodySet{} }

// Hasher returns the set's BodyHasher for canonicalization c, hash h and
// length limit (< 0: the whole body), creating it on the first request.
// Callers only read its result (Sum, Len); they must not Write to it.
// Asking for a new hasher after body bytes were written panics: it would
// have missed them.
func (s *BodySet) Hasher(c Canon, h crypto.Hash, limit int64) *BodyHasher {
	if limit < 0 {
		limit = -1
	}
	k := bodyKey{c, h, limit}
	for i, x := range s.keys {
		if x == k {
			return s.hashers[i]
		}
	}
	if s.n > 0 {
		panic("canon: BodySet.Hasher after the body started")
	}
	bh := NewBodyHasher(c, h, limit)
	s.keys = append(s.keys, k)
	s.hashers = append(s.hashers, bh)
	return bh
}

// Len returns the number of body octets the set has hashed.
func (s *BodySet) Len() int64 { return s.n }

// Write feeds the next body bytes (CRLF line ends) to every distinct
// hasher once. It never fails.
func (s *BodySet) Write(p []byte) (int, error) {
	for _, h := range s.hashers {
		h.Write(p)
	}
	s.n += int64(len(p))
	return len(p), nil
}

// WriteFrom feeds p, which a consumer holds at body offset off (the count
// of bytes it was given before p), hashing only the part of p beyond what
// the set has already hashed. It returns off+len(p), the consumer's new
// offset.
func (s *BodySet) WriteFrom(off int64, p []byte) int64 {
	end := off + int64(len(p))
	if end > s.n {
		s.Write(p[max(s.n-off, 0):])
	}
	return end
}

// Sum finishes every hasher of the set (BodyHasher.Sum); hashers then
// return their sums to all consumers.
func (s *BodySet) Sum() {
	for _, h := range s.hashers {
		h.Sum()
	}
}
