package authres_test

import (
	"fmt"
	"strings"

	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/authres"
)

func ExampleFormat() {
	spf := authres.Result{Method: "spf", Value: verify.StatusPass,
		Comment: "domain of alice@example.com designates 192.0.2.1 as permitted sender",
		Reason:  "mechanism ip4:192.0.2.0/24 matched",
		Props:   []authres.Property{{Type: "smtp", Name: "mailfrom", Value: "alice@example.com"}},
	}
	dmarc := authres.Result{Method: "dmarc", Value: verify.StatusPass, Comment: "p=reject", Props: []authres.Property{
		{Type: "header", Name: "from", Value: "example.com"},
		{Type: "policy", Name: "dmarc", Value: "reject"},
	}}
	dkim := authres.Result{Method: "dkim", Value: verify.StatusPass, Props: []authres.Property{
		{Type: "header", Name: "d", Value: "example.com"},
		{Type: "header", Name: "b", Value: authres.HeaderB("Kx9vQ3mBzT1Yc0p+eW==", nil)},
	}}
	v := authres.Format("mx.example.org", []authres.Result{spf, dkim, dmarc})
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

func ExampleFormatReceivedSPF() {
	f := authres.ReceivedSPF{
		Status:   verify.StatusFail,
		Comment:  "domain of bob@example.com does not designate 198.51.100.9 as permitted sender",
		Receiver: "mx.example.org", ClientIP: "198.51.100.9", EnvelopeFrom: "bob@example.com",
		HELO: "host.example.net", Identity: "mailfrom", Mechanism: "-all",
	}
	fmt.Println("Received-SPF: " + strings.ReplaceAll(authres.FormatReceivedSPF(f), "\r\n", "\n"))
	// Output:
	// Received-SPF: fail (mx.example.org: domain of bob@example.com does not
	// 	designate 198.51.100.9 as permitted sender) client-ip=198.51.100.9;
	// 	envelope-from="bob@example.com"; helo=host.example.net;
	// 	receiver=mx.example.org; identity=mailfrom; mechanism=-all
}
