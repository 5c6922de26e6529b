package dkim_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify/dkim"
)

func ExampleVerify() {
	// In the daemon the resolver is dnscache.New's caching resolver.
	resolver := &dnstest.Resolver{TXT: map[string][]string{
		"brisbane._domainkey.football.example.com": {"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="},
	}}
	// The ed25519-sha256 signature of RFC 8463 Appendix A.3.
	msg := `DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=brisbane; t=1528637909; h=from : to :
 subject : date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus
 Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==
From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>

Hi.

We lost the game.  Are you hungry yet?

Joe.
`
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sigs, err := dkim.Verify(ctx, resolver, strings.NewReader(msg), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range sigs {
		fmt.Printf("dkim=%s header.d=%s header.s=%s header.a=%s header.b=%s key=%d bits\n",
			s.Status, s.Domain, s.Selector, s.Algorithm, s.B[:8], s.KeyBits)
	}
	// Output:
	// dkim=pass header.d=football.example.com header.s=brisbane header.a=ed25519-sha256 header.b=/gCrinpc key=256 bits
}
