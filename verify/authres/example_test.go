package authres_test

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/authres"
	"github.com/authmilter/authmilter/verify/dmarc"
	"github.com/authmilter/authmilter/verify/spf"
)

func ExampleFormat() {
	s := spf.Result{
		Result: verify.ResultPass, Identity: spf.IdentityMailFrom,
		Sender: "alice@example.com", Domain: "example.com",
		IP: netip.MustParseAddr("192.0.2.1"), Mechanism: "ip4:192.0.2.0/24",
	}
	d := dmarc.Result{
		Result: verify.ResultPass, AuthorDomain: "example.com",
		Applied: dmarc.TagP, Policy: dmarc.PolicyReject,
	}
	dkim := authres.Result{Method: "dkim", Value: verify.ResultPass, Props: []authres.Property{
		{Type: "header", Name: "d", Value: "example.com"},
		{Type: "header", Name: "b", Value: authres.HeaderB("Kx9vQ3mBzT1Yc0p+eW==", nil)},
	}}
	v := authres.Format("mx.example.org", []authres.Result{authres.FromSPF(s), dkim, authres.FromDMARC(d)})
	fmt.Println("Authentication-Results: " + strings.ReplaceAll(v, "\r\n", "\n"))
	// Output:
	// Authentication-Results: mx.example.org;
	// 	spf=pass (domain of alice@example.com designates 192.0.2.1 as
	// 	permitted sender) reason="mechanism ip4:192.0.2.0/24 matched"
	// 	smtp.mailfrom=alice@example.com;
	// 	dkim=pass header.d=example.com header.b=Kx9vQ3mB;
	// 	dmarc=pass (p=reject) header.from=example.com policy.dmarc=reject
}

func ExampleParse() {
	h, err := authres.Parse(` mx.example.org 1 (our MTA);
	 dkim=pass (good signature) header.d=example.com header.b="Kx9vQ3mB";
	 DMARC=Fail reason="no aligned identifier" header.from=example.net`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(h.AuthServID, h.Version)
	for _, r := range h.Results {
		fmt.Printf("%s=%s reason=%q comment=%q props=%v\n", r.Method, r.Value, r.Reason, r.Comment, r.Props)
	}
	// Output:
	// mx.example.org 1
	// dkim=pass reason="" comment="good signature" props=[{header d example.com} {header b Kx9vQ3mB}]
	// dmarc=fail reason="no aligned identifier" comment="" props=[{header from example.net}]
}

func ExampleAuthServID() {
	// A field forged by the sender, claiming our authserv-id.
	forged := " (hello)\r\n \"MX.Example.Org\" 1; dmarc=pass header.from=bank.example"
	id, err := authres.AuthServID(forged)
	fmt.Println(id, err, authres.SameAuthServID(id, "mx.example.org"))
	// Output:
	// MX.Example.Org <nil> true
}

func ExampleReceivedSPF() {
	r := spf.Result{
		Result: verify.ResultFail, Identity: spf.IdentityMailFrom,
		Sender: "bob@example.com", Domain: "example.com",
		IP: netip.MustParseAddr("198.51.100.9"), HELO: "host.example.net", Mechanism: "-all",
	}
	fmt.Println("Received-SPF: " + strings.ReplaceAll(authres.ReceivedSPF(r, "mx.example.org"), "\r\n", "\n"))
	// Output:
	// Received-SPF: fail (mx.example.org: domain of bob@example.com does not
	// 	designate 198.51.100.9 as permitted sender) client-ip=198.51.100.9;
	// 	envelope-from="bob@example.com"; helo=host.example.net;
	// 	receiver=mx.example.org; identity=mailfrom; mechanism=-all
}
