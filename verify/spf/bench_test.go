package spf_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/spf"
)

// warmCache answers from ready-made slices, as a warm dnscache would,
// without the query log and name folding of dnstest, so that the benchmark
// measures this package.
type warmCache struct {
	txt  map[string][]string
	a    map[string][]netip.Addr
	aaaa map[string][]netip.Addr
	mx   map[string][]dnscache.MX
}

func nx(name string) error { return dnscache.NewError(dnscache.ErrNXDomain, name, "", "", false) }

func (w *warmCache) LookupTXT(_ context.Context, name string) ([]string, dnscache.AnswerInfo, error) {
	if v, ok := w.txt[name]; ok {
		return v, dnscache.AnswerInfo{}, nil
	}
	return nil, dnscache.AnswerInfo{}, nx(name)
}

func (w *warmCache) LookupA(_ context.Context, name string) ([]netip.Addr, dnscache.AnswerInfo, error) {
	if v, ok := w.a[name]; ok {
		return v, dnscache.AnswerInfo{}, nil
	}
	return nil, dnscache.AnswerInfo{}, nx(name)
}

func (w *warmCache) LookupAAAA(_ context.Context, name string) ([]netip.Addr, dnscache.AnswerInfo, error) {
	if v, ok := w.aaaa[name]; ok {
		return v, dnscache.AnswerInfo{}, nil
	}
	return nil, dnscache.AnswerInfo{}, nx(name)
}

func (w *warmCache) LookupMX(_ context.Context, name string) ([]dnscache.MX, dnscache.AnswerInfo, error) {
	if v, ok := w.mx[name]; ok {
		return v, dnscache.AnswerInfo{}, nil
	}
	return nil, dnscache.AnswerInfo{}, nx(name)
}

func (w *warmCache) LookupPTR(_ context.Context, addr netip.Addr) ([]string, dnscache.AnswerInfo, error) {
	return nil, dnscache.AnswerInfo{}, nx(dnscache.ReverseName(addr))
}

// A typical large sender: a few address blocks, nested includes, mx, and
// the client matched late, in the second include.
func benchResolver() *warmCache {
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	return &warmCache{
		txt: map[string][]string{
			"example.com": {
				"google-site-verification=abcdefghijklmnop",
				"v=spf1 mx ip4:198.51.100.0/24 include:_spf1.example.net include:_spf2.example.net ~all",
			},
			"_spf1.example.net": {"v=spf1 ip4:203.0.113.0/25 ip6:2001:db8:1::/48 a:relay.example.net -all"},
			"_spf2.example.net": {"v=spf1 ip4:192.0.2.0/26 ip4:192.0.2.128/25 exists:%{i}._spf.example.net -all"},
		},
		a: map[string][]netip.Addr{
			"mx1.example.com":   addrs("198.51.100.25"),
			"relay.example.net": addrs("203.0.113.200"),
		},
		mx: map[string][]dnscache.MX{"example.com": {{Host: "mx1.example.com", Pref: 10}}},
	}
}

func BenchmarkCheckHost(b *testing.B) {
	r := benchResolver()
	args := spf.Args{
		IP:             netip.MustParseAddr("192.0.2.140"),
		MailFromLocal:  "newsletter",
		MailFromDomain: "example.com",
		HELO:           "out.example.net",
	}
	ctx := context.Background()
	if res := spf.Verify(ctx, r, args); res.Status != verify.StatusPass || res.Lookups != 4 {
		b.Fatalf("got %s after %d lookups (%v)", res.Status, res.Lookups, res.Err)
	}
	b.ReportAllocs()
	for b.Loop() {
		spf.Verify(ctx, r, args)
	}
}

// BenchmarkCheckHostDNSTest is the same check through dnstest.Resolver,
// the fake the other tests use (its query log and case folding included).
func BenchmarkCheckHostDNSTest(b *testing.B) {
	w := benchResolver()
	z := &dnstest.Resolver{TXT: w.txt, A: map[string][]string{}, MX: w.mx}
	for n, a := range w.a {
		z.A[n] = []string{a[0].String()}
	}
	args := spf.Args{
		IP:             netip.MustParseAddr("192.0.2.140"),
		MailFromLocal:  "newsletter",
		MailFromDomain: "example.com",
		HELO:           "out.example.net",
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i++; i%1024 == 0 {
			z.ResetQueries()
		}
		spf.Verify(ctx, z, args)
	}
}

// BenchmarkCheckHostWarmCache is the same check through the resolver stack
// the daemon runs (dnscache.New: client and cache), warmed by one check,
// with a loopback DNS server behind it that is no longer asked.
func BenchmarkCheckHostWarmCache(b *testing.B) {
	w := benchResolver()
	z := &dnstest.Resolver{TXT: w.txt, A: map[string][]string{}, MX: w.mx}
	for n, a := range w.a {
		z.A[n] = []string{a[0].String()}
	}
	r, err := dnscache.New(dnscache.Config{Servers: []string{dnstest.Serve(b, z)}})
	if err != nil {
		b.Fatal(err)
	}
	args := spf.Args{
		IP:             netip.MustParseAddr("192.0.2.140"),
		MailFromLocal:  "newsletter",
		MailFromDomain: "example.com",
		HELO:           "out.example.net",
	}
	ctx := context.Background()
	if res := spf.Verify(ctx, r, args); res.Status != verify.StatusPass {
		b.Fatalf("got %s (%v)", res.Status, res.Err)
	}
	asked := len(z.Queries())
	b.ReportAllocs()
	for b.Loop() {
		spf.Verify(ctx, r, args)
	}
	if n := len(z.Queries()); n != asked {
		b.Fatalf("the warm cache sent %d more queries upstream", n-asked)
	}
}
