package spf_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify/spf"
)

func Example() {
	// Any dnscache.Resolver will do; this one answers from maps.
	resolver := &dnstest.Resolver{
		TXT: map[string][]string{
			"example.com": {"v=spf1 ip4:192.0.2.0/24 -all"},
		},
	}
	local, domain := spf.SplitSender("alice@example.com")
	args := spf.Args{
		IP:             netip.MustParseAddr("198.51.100.7"),
		MailFromLocal:  local,
		MailFromDomain: domain,
		HELO:           "mail.example.net",
		Receiver:       "mx.example.org",
	}
	res := spf.Verify(context.Background(), resolver, args)
	fmt.Printf("spf=%s smtp.%s=%s (%s)\n", res.Status, res.Identity, res.Sender, res.Mechanism)
	fmt.Println(res.Explanation)
	// Output:
	// spf=fail smtp.mailfrom=alice@example.com (-all)
	// domain of example.com does not designate 198.51.100.7 as permitted sender
}

func ExampleVerifyHELO() {
	resolver := &dnstest.Resolver{
		TXT: map[string][]string{"mail.example.net": {"v=spf1 a -all"}},
		A:   map[string][]string{"mail.example.net": {"192.0.2.25"}},
	}
	res := spf.VerifyHELO(context.Background(), resolver, spf.Args{
		IP:   netip.MustParseAddr("192.0.2.25"),
		HELO: "mail.example.net",
	})
	fmt.Println(res.Status, res.Identity, res.Domain, res.Mechanism, res.Lookups)
	// Output: pass helo mail.example.net a 1
}

func ExampleVerifyWithOptions() {
	resolver := &dnstest.Resolver{
		TXT: map[string][]string{"example.com": {"v=spf1 include:_spf.example.com -all"}},
	}
	res := spf.VerifyWithOptions(context.Background(), resolver, spf.Args{
		IP:             netip.MustParseAddr("192.0.2.1"),
		MailFromLocal:  "bob",
		MailFromDomain: "example.com",
	}, &spf.Options{DefaultExplanation: "rejected, see https://example.org/spf?d=%{d}"})
	fmt.Println(res.Status, res.Mechanism, errors.Is(res.Err, spf.ErrIncludeNone))
	// Output: permerror include:_spf.example.com true
}
