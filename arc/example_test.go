package arc_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/message"
)

// A hop validates the chain while the body streams in, then seals the
// message with its own results.
func Example() {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	r := &dnstest.Resolver{TXT: map[string][]string{
		"arc._domainkey.lists.example": {"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)},
	}}
	header := []message.Field{
		{Name: "From", Raw: []byte("From: alice@origin.example\r\n")},
		{Name: "Subject", Raw: []byte("Subject: hello\r\n")},
	}
	body := []byte("Hello.\r\n")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v := arc.NewValidator(ctx, r, header, nil)
	v.Write(body) // as many chunks as the MTA sends
	chain := v.Close()
	fmt.Println("received chain:", chain.Status)

	s := &arc.Sealer{Domain: "lists.example", Selector: "arc", Key: priv}
	fields, err := s.Seal(header, v.BodyHash(), chain, "mx.lists.example", "spf=pass smtp.mailfrom=origin.example")
	if err != nil {
		fmt.Println(err)
		return
	}
	sealed := append(fields, header...)

	var msg strings.Builder
	for _, f := range sealed {
		msg.Write(f.Raw)
	}
	msg.WriteString("\r\n")
	msg.Write(body)
	res, _ := arc.Validate(ctx, r, strings.NewReader(msg.String()), nil)
	fmt.Println("after sealing:", res.Status, "instances:", res.Instances)
	// Output:
	// received chain: none
	// after sealing: pass instances: 1
}
