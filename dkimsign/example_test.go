package dkimsign_test

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"time"

	"github.com/authmilter/authmilter/dkimsign"
)

// Sign a message read whole: the DKIM-Signature fields go on top of it.
func ExampleSignMessage() {
	seed := make([]byte, ed25519.SeedSize) // a real key comes from dkimsign.Load
	key := dkimsign.Key{Domain: "example.com", Selector: "ed2026", Signer: ed25519.NewKeyFromSeed(seed)}
	msg := "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: hello\r\n\r\nHi Bob.\r\n"
	opts := &dkimsign.Options{Expire: 7 * 24 * time.Hour, Now: func() time.Time { return time.Unix(1796500000, 0) }}
	_, sigs, err := dkimsign.SignMessage(strings.NewReader(msg), []dkimsign.Key{key}, opts)
	if err != nil {
		panic(err)
	}
	for _, s := range sigs {
		fmt.Println(s.Domain, s.Selector, s.Algorithm)
		fmt.Println(strings.SplitN(string(s.Field.Raw), "\r\n", 2)[0])
	}
	// Output:
	// example.com ed2026 ed25519-sha256
	// DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com;
}
