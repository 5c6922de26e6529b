package dmarc

import (
	"context"
	"testing"

	"github.com/authmilter/authmilter/dnscache/dnstest"
)

// TestDiscoveryMethod: a result with a policy says how the policy was found,
// for the aggregate report's discovery_method (RFC 9990).
func TestDiscoveryMethod(t *testing.T) {
	t.Parallel()
	r := &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject"}}}
	args := Args{From: from("a@mail.example.com"), SPF: pass("example.com")}
	for _, c := range []struct {
		finder OrgDomainFinder
		want   string
	}{{nil, "treewalk"}, {TreeWalk{}, "treewalk"}, {PSL{}, "psl"}} {
		res := Evaluate(context.Background(), r, args, &Options{Finder: c.finder})
		if res.Record == nil || res.Discovery != c.want || res.PolicyDomain != "example.com" {
			t.Errorf("finder %T: Discovery %q (record %v, policy domain %q), want %q", c.finder, res.Discovery, res.Record != nil, res.PolicyDomain, c.want)
		}
	}
	res := Evaluate(context.Background(), r, Args{From: from("a@example.org"), SPF: pass("example.org")}, nil)
	if res.Discovery != "" {
		t.Errorf("no policy: Discovery %q, want empty", res.Discovery)
	}
}
