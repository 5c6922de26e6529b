package dnstest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/authmilter/authmilter/dnscache"
)

// Serve answers DNS queries on 127.0.0.1 (UDP and TCP on one port) from r
// until the test ends, and returns the server's "127.0.0.1:port". It lets
// programs that do their own DNS (Mail::DKIM through Net::DNS, Postfix, a
// daemon under test) see the same records as the in-process verifiers.
//
// TXT, A, AAAA, MX and PTR queries are answered from r; NXDOMAIN and NODATA
// come back as such (with an SOA in the authority section, so negative
// caching works), temporary failures as SERVFAIL, except a Timeout failure,
// which gets no reply at all (the client's own timeout decides). Other
// types get NODATA.
// TXT values longer than 255 octets are split into several strings.
func Serve(t testing.TB, r dnscache.Resolver) string {
	t.Helper()
	pc, ln := ListenUDPTCP(t)
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		if m := answer(r, q, serveTTL); m != nil {
			_ = w.WriteMsg(m)
		}
	})
	stop := serveOn(pc, ln, h)
	t.Cleanup(stop)
	return pc.LocalAddr().String()
}

// serveOn serves h on pc and ln until the returned function is called.
func serveOn(pc net.PacketConn, ln net.Listener, h dns.Handler) (stop func()) {
	var servers []*dns.Server
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		servers = append(servers, srv)
	}
	return func() {
		for _, srv := range servers {
			_ = srv.Shutdown()
		}
	}
}

// ListenUDPTCP opens a UDP socket and a TCP listener on the same free port
// of 127.0.0.1, as a DNS server needs (TCP after a truncated UDP reply).
func ListenUDPTCP(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for tries := 0; ; tries++ {
		p, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", p.LocalAddr().String())
		if err == nil {
			return p, l
		}
		p.Close()
		if tries == 20 {
			t.Fatalf("dnstest: no port free for both UDP and TCP: %v", err)
		}
	}
}

const serveTTL = 60

func answer(r dnscache.Resolver, q *dns.Msg, ttl uint32) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if len(q.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	question := q.Question[0]
	name := question.Name
	bare := strings.TrimSuffix(name, ".")
	hdr := dns.RR_Header{Name: name, Class: dns.ClassINET, Ttl: ttl}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	switch question.Qtype {
	case dns.TypeTXT:
		var txt []string
		txt, _, err = r.LookupTXT(ctx, bare)
		for _, v := range txt {
			h := hdr
			h.Rrtype = dns.TypeTXT
			m.Answer = append(m.Answer, &dns.TXT{Hdr: h, Txt: splitTXT(v)})
		}
	case dns.TypeA, dns.TypeAAAA:
		var addrs []netip.Addr
		if question.Qtype == dns.TypeA {
			addrs, _, err = r.LookupA(ctx, bare)
		} else {
			addrs, _, err = r.LookupAAAA(ctx, bare)
		}
		for _, a := range addrs {
			h := hdr
			h.Rrtype = question.Qtype
			if a.Is4() {
				m.Answer = append(m.Answer, &dns.A{Hdr: h, A: a.AsSlice()})
			} else {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: h, AAAA: a.AsSlice()})
			}
		}
	case dns.TypeMX:
		var mxs []dnscache.MX
		mxs, _, err = r.LookupMX(ctx, bare)
		for _, mx := range mxs {
			h := hdr
			h.Rrtype = dns.TypeMX
			m.Answer = append(m.Answer, &dns.MX{Hdr: h, Preference: mx.Pref, Mx: dns.Fqdn(mx.Host)})
		}
	case dns.TypePTR:
		addr, ok := reverseAddr(bare)
		if !ok {
			err = dnscache.NewError(dnscache.ErrNXDomain, bare, "dnstest", "", false)
			break
		}
		var names []string
		names, _, err = r.LookupPTR(ctx, addr)
		for _, n := range names {
			h := hdr
			h.Rrtype = dns.TypePTR
			m.Answer = append(m.Answer, &dns.PTR{Hdr: h, Ptr: dns.Fqdn(n)})
		}
	default:
		err = dnscache.NewError(dnscache.ErrNoData, bare, "dnstest", "", false)
	}
	switch {
	case err == nil:
	case errors.Is(err, dnscache.ErrNXDomain):
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa(name, ttl)}
	case errors.Is(err, dnscache.ErrNoData):
		m.Ns = []dns.RR{soa(name, ttl)}
	case isTimeout(err):
		return nil
	default:
		m.Rcode = dns.RcodeServerFailure
	}
	return m
}

// isTimeout reports whether err is a lookup that timed out (a Timeout
// failure of a Resolver).
func isTimeout(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsTimeout
}

// soa is the authority record of negative answers (RFC 2308), placed at
// the queried name itself: good enough for a resolver's negative TTL.
func soa(name string, ttl uint32) dns.RR {
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:  "ns.dnstest.", Mbox: "hostmaster.dnstest.", Serial: 1,
		Refresh: 3600, Retry: 600, Expire: 86400, Minttl: ttl,
	}
}

// splitTXT cuts a TXT value into character-strings of at most 255 octets
// (RFC 1035 §3.3), as a zone file publishes a long DKIM key.
func splitTXT(v string) []string {
	if v == "" {
		return []string{""}
	}
	var out []string
	for len(v) > 255 {
		out = append(out, v[:255])
		v = v[255:]
	}
	return append(out, v)
}

// reverseAddr turns an in-addr.arpa or ip6.arpa name back into an address.
func reverseAddr(name string) (netip.Addr, bool) {
	name = strings.ToLower(name)
	if s, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		l := strings.Split(s, ".")
		if len(l) != 4 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(l[3] + "." + l[2] + "." + l[1] + "." + l[0])
		return a, err == nil
	}
	if s, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		l := strings.Split(s, ".")
		if len(l) != 32 {
			return netip.Addr{}, false
		}
		var b strings.Builder
		for i := 31; i >= 0; i-- {
			b.WriteString(l[i])
			if i%4 == 0 && i > 0 {
				b.WriteByte(':')
			}
		}
		a, err := netip.ParseAddr(b.String())
		return a, err == nil
	}
	return netip.Addr{}, false
}
