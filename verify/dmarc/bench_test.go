package dmarc

import (
	"context"
	"testing"

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
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		opts *Options
	}{
		{"treewalk", nil},
		{"psl", &Options{Finder: PSL{}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res := Evaluate(ctx, r, args, bc.opts)
				if res.Status != verify.StatusPass {
					b.Fatalf("%s: %s", res.Status, res.Reason)
				}
				r.ResetQueries()
			}
		})
	}
}
