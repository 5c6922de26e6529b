package dnscache

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testServer is an in-process DNS server on 127.0.0.1, UDP and TCP on the
// same port, running one test's handler and counting the queries it gets.
type testServer struct {
	addr     string
	udp, tcp atomic.Int64
}

// queries returns the number of queries received, UDP and TCP.
func (s *testServer) queries() int64 { return s.udp.Load() + s.tcp.Load() }

// startServer serves handler until the test ends.
func startServer(t testing.TB, handler dns.HandlerFunc) *testServer {
	t.Helper()
	var (
		pc net.PacketConn
		ln net.Listener
	)
	for tries := 0; pc == nil; tries++ {
		p, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", p.LocalAddr().String())
		if err != nil {
			p.Close()
			if tries == 20 {
				t.Fatalf("no port free for both UDP and TCP: %v", err)
			}
			continue
		}
		pc, ln = p, l
	}
	s := &testServer{addr: pc.LocalAddr().String()}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
			s.tcp.Add(1)
		} else {
			s.udp.Add(1)
		}
		handler(w, r)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return s
}

// silentServer returns the address of a UDP socket that never answers.
func silentServer(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// closedPort returns an address where nothing listens (queries to it fail
// with "connection refused").
func closedPort(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// mustRR parses a record in master-file syntax.
func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("bad test record %q: %v", s, err)
	}
	return rr
}

// respond writes the reply to r with rcode and the given answer and
// authority records.
func respond(t testing.TB, w dns.ResponseWriter, r *dns.Msg, rcode int, answer []string, authority ...string) {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	for _, s := range answer {
		m.Answer = append(m.Answer, mustRR(t, s))
	}
	for _, s := range authority {
		m.Ns = append(m.Ns, mustRR(t, s))
	}
	_ = w.WriteMsg(m)
}

// fixed returns a handler that answers every query the same way.
func fixed(t testing.TB, rcode int, answer []string, authority ...string) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) { respond(t, w, r, rcode, answer, authority...) }
}

// echoTXT returns a handler that answers every question with one TXT
// record, "ok", at the name asked.
func echoTXT(t testing.TB) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		respond(t, w, r, dns.RcodeSuccess, []string{r.Question[0].Name + ` 60 IN TXT "ok"`})
	}
}

// testConfig is a Config for servers with test-sized timeouts.
func testConfig(servers ...string) Config {
	return Config{Servers: servers, Timeout: 300 * time.Millisecond, Attempts: 1}
}

func newTestClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantErr checks that err is a *net.DNSError of the given kind, both as
// errors.As finds it and as a direct type assertion (go-msgauth's way).
func wantErr(t *testing.T, err error, kind error, timeout bool) *net.DNSError {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %v: errors.Is(err, %v) is false", err, kind)
	}
	de, ok := err.(*net.DNSError)
	if !ok {
		t.Fatalf("error %v is a %T, not a *net.DNSError", err, err)
	}
	var as *net.DNSError
	if !errors.As(err, &as) || as != de {
		t.Fatalf("errors.As does not find the *net.DNSError in %v", err)
	}
	temporary := kind == ErrTemporary
	if de.IsNotFound == temporary || de.IsTemporary != temporary || de.IsTimeout != timeout {
		t.Fatalf("error %v: IsNotFound=%v IsTemporary=%v IsTimeout=%v, want kind %v timeout %v",
			err, de.IsNotFound, de.IsTemporary, de.IsTimeout, kind, timeout)
	}
	if de.Temporary() != temporary {
		t.Fatalf("error %v: Temporary()=%v", err, de.Temporary())
	}
	return de
}
