package arc

import (
	"context"
	"crypto"
	"testing"

	"github.com/authmilter/authmilter/internal/canon"
	"github.com/authmilter/authmilter/verify"
)

// Two consumers of one canon.BodySet (here two validators; in the milter a
// DKIM verifier and a validator), each written the same body in its own
// chunks, hash the body once and both validate.
func TestSharedBodySet(t *testing.T) {
	t.Parallel()
	r := newResolver()
	s := newEd25519Sealer(t, r, "hop1.example")
	msg := mustSeal(t, r, newEd25519Sealer(t, r, "hop2.example"), mustSeal(t, r, s, testMessage))
	header, body := splitMessage(t, msg)

	set := canon.NewBodySet()
	a := NewValidatorWithBody(context.Background(), r, header, set, nil)
	b := NewValidatorWithBody(context.Background(), r, header, set, nil)
	if set.Hasher(canon.Relaxed, crypto.SHA256, -1) != a.full || a.full != b.full {
		t.Fatal("the relaxed/sha256 body hash is not shared")
	}
	for i := 0; i < len(body); i += 7 {
		a.Write(body[i:min(i+7, len(body))])
	}
	for i := 0; i < len(body); i += 5 {
		b.Write(body[i:min(i+5, len(body))])
	}
	if set.Len() != int64(len(body)) {
		t.Errorf("set hashed %d octets of a %d-octet body", set.Len(), len(body))
	}
	for name, v := range map[string]*Validator{"a": a, "b": b} {
		if res := v.Close(); res.Status != verify.StatusPass {
			t.Errorf("%s: %s %s", name, res.Status, res.Reason)
		}
	}
}
