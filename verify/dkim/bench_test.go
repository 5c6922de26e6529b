package dkim

import (
	"context"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/verify"
)

// BenchmarkVerify verifies a message signed with RSA-2048 and Ed25519
// (relaxed/relaxed) through Verify, keys from an in-memory resolver (a warm
// cache).
func BenchmarkVerify(b *testing.B) {
	k := testKeys()
	r := resolverFor(map[string]string{
		"rsa._domainkey.example.com": keyRecord(k.rsa2048, ""),
		"ed._domainkey.example.com":  keyRecord(k.ed, ""),
	})
	for _, size := range []struct {
		name  string
		bytes int
	}{{"20KB", 20 << 10}, {"200KB", 200 << 10}} {
		msg := testMessage(size.bytes)
		msg = testSign(b, msg, signSpec{key: k.rsa2048, selector: "rsa", relaxed: true})
		msg = testSign(b, msg, signSpec{key: k.ed, selector: "ed", relaxed: true})
		b.Run(size.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			ctx := context.Background()
			for b.Loop() {
				sigs, err := Verify(ctx, r, strings.NewReader(msg), nil)
				if err != nil || len(sigs) != 2 || sigs[0].Status != verify.StatusPass || sigs[1].Status != verify.StatusPass {
					b.Fatalf("%v %+v", err, sigs)
				}
			}
		})
	}
}
