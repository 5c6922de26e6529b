package canon

import (
	"bytes"
	"crypto"
	_ "crypto/sha1" // for crypto.SHA1
	"testing"
)

func TestBodySetShares(t *testing.T) {
	s := NewBodySet()
	a := s.Hasher(Relaxed, crypto.SHA256, -1)
	if b := s.Hasher(Relaxed, crypto.SHA256, -5); b != a {
		t.Error("identical requests (any negative limit) got different hashers")
	}
	for _, other := range []*BodyHasher{
		s.Hasher(Simple, crypto.SHA256, -1),
		s.Hasher(Relaxed, crypto.SHA1, -1),
		s.Hasher(Relaxed, crypto.SHA256, 10),
	} {
		if other == a {
			t.Error("different requests share a hasher")
		}
	}
	if len(s.hashers) != 4 {
		t.Errorf("%d hashers, want 4", len(s.hashers))
	}
}

// Two consumers writing the same body in different chunkings through
// WriteFrom hash it once, with the results of separate hashers.
func TestBodySetWriteFrom(t *testing.T) {
	body := []byte(rfcBody + "more  text\r\n\r\n")
	s := NewBodySet()
	keys := []struct {
		c     Canon
		limit int64
	}{{Simple, -1}, {Relaxed, -1}, {Relaxed, 7}}
	var hs []*BodyHasher
	for _, k := range keys {
		hs = append(hs, s.Hasher(k.c, crypto.SHA256, k.limit))
	}
	var offA, offB int64
	for i := 0; i < len(body); i += 3 {
		offA = s.WriteFrom(offA, body[i:min(i+3, len(body))])
	}
	for i := 0; i < len(body); i += 5 {
		offB = s.WriteFrom(offB, body[i:min(i+5, len(body))])
	}
	if s.Len() != int64(len(body)) || offA != s.Len() || offB != s.Len() {
		t.Fatalf("Len %d, offsets %d %d, body %d", s.Len(), offA, offB, len(body))
	}
	s.Sum()
	for i, k := range keys {
		want := NewBodyHasher(k.c, crypto.SHA256, k.limit)
		want.Write(body)
		if !bytes.Equal(hs[i].Sum(), want.Sum()) {
			t.Errorf("%v l=%d: hash differs from a separate hasher", k.c, k.limit)
		}
	}
}

func TestBodySetLateHasher(t *testing.T) {
	s := NewBodySet()
	s.Hasher(Simple, crypto.SHA256, -1)
	s.Write([]byte("x"))
	s.Hasher(Simple, crypto.SHA256, -1) // existing: fine
	defer func() {
		if recover() == nil {
			t.Error("a new hasher after the body started did not panic")
		}
	}()
	s.Hasher(Relaxed, crypto.SHA256, -1)
}
