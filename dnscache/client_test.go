package dnscache

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// recordsHandler answers from records in master-file syntax: the records
// whose owner and type match the question, NXDOMAIN for an unknown name,
// NODATA (with an SOA) for a known name without the type.
func recordsHandler(t testing.TB, records ...string) dns.HandlerFunc {
	var rrs []dns.RR
	for _, s := range records {
		rrs = append(rrs, mustRR(t, s))
	}
	const soa = "example.com. 3600 IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 60"
	return func(w dns.ResponseWriter, r *dns.Msg) {
		q := r.Question[0]
		var answer []string
		known := false
		for _, rr := range rrs {
			if strings.EqualFold(rr.Header().Name, q.Name) {
				known = true
				if rr.Header().Rrtype == q.Qtype {
					answer = append(answer, rr.String())
				}
			}
		}
		switch {
		case len(answer) > 0:
			respond(t, w, r, dns.RcodeSuccess, answer)
		case known:
			respond(t, w, r, dns.RcodeSuccess, nil, soa)
		default:
			respond(t, w, r, dns.RcodeNameError, nil, soa)
		}
	}
}

func TestClientRecordTypes(t *testing.T) {
	t.Parallel()
	srv := startServer(t, recordsHandler(t,
		`example.com. 300 IN TXT "v=spf1 " "ip4:192.0.2.0/24 " "-all"`,
		`example.com. 300 IN TXT "quote\"back\\slash\009tab"`,
		`example.com. 300 IN A 192.0.2.1`,
		`example.com. 300 IN A 192.0.2.2`,
		`example.com. 300 IN AAAA 2001:db8::1`,
		`example.com. 300 IN MX 10 mx1.example.com.`,
		`example.com. 300 IN MX 20 mx2.example.com.`,
		`null.example.com. 300 IN MX 0 .`,
		`1.2.0.192.in-addr.arpa. 300 IN PTR host.example.com.`,
		`1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 300 IN PTR host6.example.com.`,
	))
	c := newTestClient(t, testConfig(srv.addr))
	ctx := context.Background()

	txt, _, err := c.LookupTXT(ctx, "example.com")
	if want := []string{"v=spf1 ip4:192.0.2.0/24 -all", "quote\"back\\slash\ttab"}; err != nil || !reflect.DeepEqual(txt, want) {
		t.Errorf("TXT = %q, %v; want %q", txt, err, want)
	}
	a, _, err := c.LookupA(ctx, "example.com")
	if want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}; err != nil || !reflect.DeepEqual(a, want) {
		t.Errorf("A = %v, %v; want %v", a, err, want)
	}
	aaaa, _, err := c.LookupAAAA(ctx, "example.com")
	if want := []netip.Addr{netip.MustParseAddr("2001:db8::1")}; err != nil || !reflect.DeepEqual(aaaa, want) {
		t.Errorf("AAAA = %v, %v; want %v", aaaa, err, want)
	}
	mx, _, err := c.LookupMX(ctx, "example.com")
	if want := []MX{{"mx1.example.com", 10}, {"mx2.example.com", 20}}; err != nil || !reflect.DeepEqual(mx, want) {
		t.Errorf("MX = %v, %v; want %v", mx, err, want)
	}
	mx, _, err = c.LookupMX(ctx, "null.example.com")
	if want := []MX{{"", 0}}; err != nil || !reflect.DeepEqual(mx, want) {
		t.Errorf("null MX (RFC 7505) = %v, %v; want %v", mx, err, want)
	}
	ptr, _, err := c.LookupPTR(ctx, netip.MustParseAddr("192.0.2.1"))
	if want := []string{"host.example.com"}; err != nil || !reflect.DeepEqual(ptr, want) {
		t.Errorf("PTR = %v, %v; want %v", ptr, err, want)
	}
	ptr, _, err = c.LookupPTR(ctx, netip.MustParseAddr("2001:db8::1"))
	if want := []string{"host6.example.com"}; err != nil || !reflect.DeepEqual(ptr, want) {
		t.Errorf("PTR6 = %v, %v; want %v", ptr, err, want)
	}
}

// The query is for the lower-cased absolute name, with RD, EDNS0 at 1232
// octets, the DO bit and the AD bit.
func TestClientQueryFlags(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		got *dns.Msg
	)
	srv := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		mu.Lock()
		got = r.Copy()
		mu.Unlock()
		respond(t, w, r, dns.RcodeSuccess, []string{"example.com. 60 IN TXT ok"})
	})
	c := newTestClient(t, testConfig(srv.addr))
	if _, _, err := c.LookupTXT(context.Background(), "ExAmple.COM."); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if q := got.Question[0]; q.Name != "example.com." || q.Qtype != dns.TypeTXT || q.Qclass != dns.ClassINET {
		t.Errorf("question = %v", q)
	}
	opt := got.IsEdns0()
	if !got.RecursionDesired || !got.AuthenticatedData || opt == nil || opt.UDPSize() != 1232 || !opt.Do() {
		t.Errorf("query flags: RD=%v AD=%v EDNS0=%v", got.RecursionDesired, got.AuthenticatedData, opt)
	}
}

func TestClientTruncatedRetriesOverTCP(t *testing.T) {
	t.Parallel()
	var srv *testServer
	srv = startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if w.RemoteAddr().Network() == "udp" {
			m := new(dns.Msg)
			m.SetReply(r)
			m.Truncated = true
			_ = w.WriteMsg(m)
			return
		}
		respond(t, w, r, dns.RcodeSuccess, []string{`example.com. 60 IN TXT "over tcp"`})
	})
	c := newTestClient(t, testConfig(srv.addr))
	txt, _, err := c.LookupTXT(context.Background(), "example.com")
	if err != nil || len(txt) != 1 || txt[0] != "over tcp" {
		t.Fatalf("TXT = %q, %v", txt, err)
	}
	if srv.udp.Load() != 1 || srv.tcp.Load() != 1 {
		t.Errorf("queries: %d UDP, %d TCP; want 1 and 1", srv.udp.Load(), srv.tcp.Load())
	}
}

// SERVFAIL, REFUSED and any other error code are temporary failures, tried
// at every server for every attempt.
func TestClientErrorCodesAreTemporary(t *testing.T) {
	t.Parallel()
	for _, rcode := range []int{dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeFormatError, dns.RcodeNotImplemented} {
		t.Run(dns.RcodeToString[rcode], func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, fixed(t, rcode, nil))
			cfg := testConfig(srv.addr, srv.addr)
			cfg.Attempts = 2
			c := newTestClient(t, cfg)
			_, _, err := c.LookupTXT(context.Background(), "example.com")
			de := wantErr(t, err, ErrTemporary, false)
			if !strings.Contains(de.Error(), dns.RcodeToString[rcode]) {
				t.Errorf("error %q does not name %s", de, dns.RcodeToString[rcode])
			}
			if n := srv.queries(); n != 4 {
				t.Errorf("server got %d queries, want 4 (2 servers × 2 attempts)", n)
			}
		})
	}
}

func TestClientTimeout(t *testing.T) {
	t.Parallel()
	cfg := testConfig(silentServer(t))
	cfg.Timeout = 150 * time.Millisecond
	c := newTestClient(t, cfg)
	start := time.Now()
	_, _, err := c.LookupTXT(context.Background(), "example.com")
	elapsed := time.Since(start)
	wantErr(t, err, ErrTemporary, true)
	if elapsed < 140*time.Millisecond || elapsed > time.Second {
		t.Errorf("lookup took %v, want about the 150ms timeout", elapsed)
	}
}

// The caller's deadline, shorter than the configured timeout, wins.
func TestClientContextDeadline(t *testing.T) {
	t.Parallel()
	cfg := testConfig(silentServer(t))
	cfg.Timeout = 10 * time.Second
	c := newTestClient(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := c.LookupTXT(ctx, "example.com")
	wantErr(t, err, ErrTemporary, true)
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("lookup took %v after a 100ms deadline", elapsed)
	}
}

// Cancelling the caller's context ends the lookup at once.
func TestClientContextCancel(t *testing.T) {
	t.Parallel()
	cfg := testConfig(silentServer(t))
	cfg.Timeout = 10 * time.Second
	c := newTestClient(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, _, err := c.LookupTXT(ctx, "example.com")
	wantErr(t, err, ErrTemporary, false)
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("lookup took %v after cancellation at 50ms", elapsed)
	}
}

// When the first server fails, the second answers.
func TestClientFallsBackToSecondServer(t *testing.T) {
	t.Parallel()
	ok := []string{`example.com. 60 IN TXT "second"`}
	for _, tc := range []struct {
		name  string
		first func(t *testing.T) string
	}{
		{"SERVFAIL", func(t *testing.T) string { return startServer(t, fixed(t, dns.RcodeServerFailure, nil)).addr }},
		{"REFUSED", func(t *testing.T) string { return startServer(t, fixed(t, dns.RcodeRefused, nil)).addr }},
		{"timeout", func(t *testing.T) string { return silentServer(t) }},
		{"connection refused", func(t *testing.T) string { return closedPort(t) }},
		{"wrong question", func(t *testing.T) string {
			return startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
				r.Question[0].Name = "other.example."
				respond(t, w, r, dns.RcodeSuccess, nil)
			}).addr
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			second := startServer(t, fixed(t, dns.RcodeSuccess, ok))
			cfg := testConfig(tc.first(t), second.addr)
			cfg.Timeout = 150 * time.Millisecond
			c := newTestClient(t, cfg)
			txt, _, err := c.LookupTXT(context.Background(), "example.com")
			if err != nil || len(txt) != 1 || txt[0] != "second" {
				t.Fatalf("TXT = %q, %v", txt, err)
			}
		})
	}
}

// NXDOMAIN and NODATA are final: no other server is asked.
func TestClientNXDomainAndNoData(t *testing.T) {
	t.Parallel()
	srv := startServer(t, recordsHandler(t, `example.com. 60 IN A 192.0.2.1`))
	c := newTestClient(t, testConfig(srv.addr, srv.addr))
	ctx := context.Background()

	_, _, err := c.LookupTXT(ctx, "nope.example.com")
	de := wantErr(t, err, ErrNXDomain, false)
	if de.Name != "nope.example.com" || de.Server != srv.addr {
		t.Errorf("error names %q at %q", de.Name, de.Server)
	}
	_, _, err = c.LookupTXT(ctx, "example.com")
	wantErr(t, err, ErrNoData, false)
	if !IsNotFound(err) || IsTemporary(err) {
		t.Errorf("IsNotFound/IsTemporary wrong for %v", err)
	}
	if n := srv.queries(); n != 2 {
		t.Errorf("server got %d queries, want 2", n)
	}
}

// A referral (NS without SOA) means the server is not recursive: it is a
// temporary failure, not NODATA (RFC 2308 §2.2).
func TestClientReferralIsTemporary(t *testing.T) {
	t.Parallel()
	srv := startServer(t, fixed(t, dns.RcodeSuccess, nil, "example.com. 3600 IN NS ns.example.com."))
	c := newTestClient(t, testConfig(srv.addr))
	_, _, err := c.LookupTXT(context.Background(), "example.com")
	wantErr(t, err, ErrTemporary, false)
}

func TestClientCNAME(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		switch r.Question[0].Name {
		case "alias.example.com.":
			respond(t, w, r, dns.RcodeSuccess, []string{
				"alias.example.com. 300 IN CNAME mid.example.net.",
				"mid.example.net. 300 IN CNAME final.example.org.",
				`unrelated.example.org. 300 IN TXT "not in the chain"`,
				`final.example.org. 300 IN TXT "final"`,
				`alias.example.com. 300 IN A 192.0.2.9`,
			})
		case "dangling.example.com.":
			respond(t, w, r, dns.RcodeNameError, []string{"dangling.example.com. 300 IN CNAME gone.example.net."},
				"example.net. 300 IN SOA ns.example.net. h.example.net. 1 2 3 4 60")
		case "empty.example.com.":
			respond(t, w, r, dns.RcodeSuccess, []string{"empty.example.com. 300 IN CNAME a.example.net."},
				"example.net. 300 IN SOA ns.example.net. h.example.net. 1 2 3 4 60")
		case "loop.example.com.":
			respond(t, w, r, dns.RcodeSuccess, []string{
				"loop.example.com. 300 IN CNAME loop2.example.com.",
				"loop2.example.com. 300 IN CNAME loop.example.com.",
			})
		case "stray.example.com.":
			respond(t, w, r, dns.RcodeSuccess, []string{`elsewhere.example.com. 300 IN TXT "forged"`},
				"example.com. 300 IN SOA ns.example.com. h.example.com. 1 2 3 4 60")
		}
	})
	c := newTestClient(t, testConfig(srv.addr))
	ctx := context.Background()

	txt, _, err := c.LookupTXT(ctx, "alias.example.com")
	if err != nil || !reflect.DeepEqual(txt, []string{"final"}) {
		t.Errorf("TXT via CNAME chain = %q, %v", txt, err)
	}
	_, _, err = c.LookupTXT(ctx, "dangling.example.com")
	wantErr(t, err, ErrNXDomain, false)
	_, _, err = c.LookupTXT(ctx, "empty.example.com")
	wantErr(t, err, ErrNoData, false)
	_, _, err = c.LookupTXT(ctx, "loop.example.com")
	wantErr(t, err, ErrTemporary, false)
	_, _, err = c.LookupTXT(ctx, "stray.example.com")
	wantErr(t, err, ErrNoData, false)
}

// The AD bit sets AnswerInfo.Authentic only with TrustAD.
func TestClientAuthenticData(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.AuthenticatedData = true
		m.Answer = append(m.Answer, mustRR(t, `example.com. 60 IN TXT "signed"`))
		_ = w.WriteMsg(m)
	})
	for _, trust := range []bool{false, true} {
		cfg := testConfig(srv.addr)
		cfg.TrustAD = trust
		c := newTestClient(t, cfg)
		_, res, err := c.LookupTXT(context.Background(), "example.com")
		if err != nil || res.Authentic != trust {
			t.Errorf("TrustAD=%v: Authentic=%v, %v", trust, res.Authentic, err)
		}
	}
}

// A name in U-labels is queried by its A-labels (RFC 8616).
func TestClientULabelName(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var asked []string
	srv := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		mu.Lock()
		asked = append(asked, r.Question[0].Name)
		mu.Unlock()
		respond(t, w, r, dns.RcodeSuccess, []string{r.Question[0].Name + ` 60 IN TXT "ok"`})
	})
	c := newTestClient(t, testConfig(srv.addr))
	txts, _, err := c.LookupTXT(context.Background(), "Bücher.Example.")
	if err != nil || len(txts) != 1 || txts[0] != "ok" {
		t.Fatalf("LookupTXT(Bücher.Example.) = %q, %v", txts, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 1 || asked[0] != "xn--bcher-kva.example." {
		t.Errorf("server was asked %q, want [xn--bcher-kva.example.]", asked)
	}
}

// Names that cannot exist are NXDOMAIN without a query.
func TestClientInvalidNames(t *testing.T) {
	t.Parallel()
	srv := startServer(t, echoTXT(t))
	c := newTestClient(t, testConfig(srv.addr))
	for _, name := range []string{
		"",
		".",
		"a..example.com",
		".example.com",
		"example.com..",
		strings.Repeat("a", 64) + ".example.com",
		strings.Repeat("abcdefghi.", 25) + "example",
		"exa mple.com",
		`exa\.mple.com`,
		"ex\x00ample.com",
		"b\xc3cher.example",
		"bü_cher.example",
	} {
		_, _, err := c.LookupTXT(context.Background(), name)
		de := wantErr(t, err, ErrNXDomain, false)
		if !strings.Contains(de.Error(), "invalid domain name") {
			t.Errorf("%q: error %q does not say why", name, de)
		}
	}
	if _, _, err := c.LookupPTR(context.Background(), netip.Addr{}); err == nil {
		t.Error("PTR of the zero Addr: no error")
	}
	if n := srv.queries(); n != 0 {
		t.Errorf("%d queries sent for invalid names", n)
	}
	// The longest valid name and label are accepted.
	for _, name := range []string{
		strings.Repeat("a", 63) + ".example.com",
		strings.Repeat("abcdefghi.", 24) + "abcdefghijkl",
	} {
		if _, _, err := c.LookupTXT(context.Background(), name); err != nil {
			t.Errorf("%d-octet name: %v", len(name), err)
		}
	}
}

func TestNewClientServers(t *testing.T) {
	t.Parallel()
	c, err := NewClient(Config{Servers: []string{"192.0.2.53", "192.0.2.54:5353", "2001:db8::53", "[2001:db8::54]:5353"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.53:53", "192.0.2.54:5353", "[2001:db8::53]:53", "[2001:db8::54]:5353"}
	if got := c.Servers(); !reflect.DeepEqual(got, want) {
		t.Errorf("servers = %q, want %q", got, want)
	}
	for _, bad := range []string{"ns.example.com", "192.0.2.1:0", "192.0.2.1:x", "[::1"} {
		if _, err := NewClient(Config{Servers: []string{bad}}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("server %q: error %v", bad, err)
		}
	}

	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(conf, []byte("search example.com\nnameserver 192.0.2.1\nnameserver 2001:db8::1\noptions edns0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = NewClient(Config{ResolvConf: conf})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Servers(), []string{"192.0.2.1:53", "[2001:db8::1]:53"}; !reflect.DeepEqual(got, want) {
		t.Errorf("servers from resolv.conf = %q, want %q", got, want)
	}
	empty := filepath.Join(dir, "empty.conf")
	if err := os.WriteFile(empty, []byte("search example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(Config{ResolvConf: empty}); err == nil {
		t.Error("resolv.conf without nameserver: no error")
	}
	if _, err := NewClient(Config{ResolvConf: filepath.Join(dir, "missing")}); err == nil {
		t.Error("missing resolv.conf: no error")
	}
}
