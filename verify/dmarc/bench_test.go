package dmarc

import (
	"context"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify"
)

// BenchmarkEvaluate measures one evaluation against a warm (in-memory)
// resolver: a subdomain author, a relaxed-aligned DKIM pass and an unaligned
// SPF pass, so discovery walks three names and one identifier is walked.
func BenchmarkEvaluate(b *testing.B) {
	r := &dnstest.Resolver{TXT: map[string][]string{
		"_dmarc.example.com": {"v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@example.com"},
	}}
	args := Args{
		From: []string{`"Example News" <news@mail.example.com>`},
		SPF:  SPF{Status: verify.StatusPass, Domain: "bounce.example.net", Identity: IdentityMailFrom},
		DKIM: []DKIM{{Status: verify.StatusPass, Domain: "dkim.example.com", Selector: "s1"}},
	}
	// The same records in a dnscache.Zone: a resolver that answers from
	// memory and says so (dnscache.HonoursCacheOnly), as a warm dnscache.Cache
	// does, so the walks run on the caller's goroutine. The dnstest
	// resolver cannot say so, and the walks ask their names concurrently.
	zone, err := dnscache.LoadZone(strings.NewReader(
		"@ 300 SOA ns hostmaster 1 3600 600 86400 300\n"+
			"_dmarc 300 TXT \"v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@example.com\"\n"), "example.com.", "bench.zone")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		r    dnscache.Resolver
		opts *Options
	}{
		{"treewalk", r, nil},
		{"treewalk-sequential", r, &Options{Finder: TreeWalk{Sequential: true}}},
		{"treewalk-memory", zone, nil},
		{"psl", r, &Options{Finder: PSL{}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res := Evaluate(ctx, bc.r, args, bc.opts)
				if res.Status != verify.StatusPass {
					b.Fatalf("%s: %s", res.Status, res.Reason)
				}
				r.ResetQueries()
			}
		})
	}
}
