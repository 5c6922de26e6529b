package dmarc_test

import (
	"context"
	"fmt"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/dmarc"
)

// A message from a subdomain whose only DKIM signature is from an unrelated
// domain fails, and the Organizational Domain's sp policy applies.
func ExampleEvaluate() {
	// In the daemon the resolver is dnscache's; here it is a fake zone.
	resolver := &dnstest.Resolver{TXT: map[string][]string{
		"_dmarc.example.com": {"v=DMARC1; p=none; sp=reject; rua=mailto:dmarc@example.com"},
	}}
	res := dmarc.Evaluate(context.Background(), resolver, dmarc.Args{
		From: []string{` "Billing" <billing@mail.example.com>`},
		SPF:  dmarc.SPF{Status: verify.StatusPass, Domain: "bounces.example.net", Identity: dmarc.IdentityMailFrom},
		DKIM: []dmarc.DKIM{{Status: verify.StatusPass, Domain: "esp.example.net", Selector: "s1"}},
	}, nil)

	fmt.Println("dmarc:", res.Status)
	fmt.Println("header.from:", res.AuthorDomain)
	fmt.Println("policy from:", res.PolicyDomain, res.Applied)
	fmt.Println("disposition:", res.Disposition)
	// Output:
	// dmarc: fail
	// header.from: mail.example.com
	// policy from: example.com sp
	// disposition: reject
}

// The RFC 7489 method uses the Public Suffix List instead of the tree walk.
func ExampleEvaluate_publicSuffixList() {
	resolver := &dnstest.Resolver{TXT: map[string][]string{
		"_dmarc.example.co.uk": {"v=DMARC1; p=quarantine"},
	}}
	res := dmarc.Evaluate(context.Background(), resolver, dmarc.Args{
		From: []string{"news@shop.example.co.uk"},
		DKIM: []dmarc.DKIM{{Status: verify.StatusPass, Domain: "mailer.example.co.uk", Selector: "k1"}},
	}, &dmarc.Options{Finder: dmarc.PSL{}})

	fmt.Println(res.Status, res.OrgDomain, res.DKIM[0].Alignment)
	// Output: pass example.co.uk relaxed
}

func ExampleParseRecord() {
	r, err := dmarc.ParseRecord("v=DMARC1; p=Reject; sp=quarantine; pct=bogus; rua=mailto:d@example.com!10m")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Policy, r.SubdomainPolicy, r.Percent, r.RUA, r.Invalid)
	// Output: reject quarantine 100 [mailto:d@example.com] [pct]
}
