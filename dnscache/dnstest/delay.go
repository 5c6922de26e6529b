package dnstest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/authmilter/authmilter/dnscache"
)

// Delay is how long a DelayServer waits before each reply: Min when Max
// is not above it, else a uniform draw from [Min, Max].
type Delay struct {
	Min, Max time.Duration
}

// ParseDelay reads a delay as "20ms" (fixed) or "5ms-80ms" (uniform).
func ParseDelay(s string) (Delay, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	min, err := time.ParseDuration(strings.TrimSpace(lo))
	if err != nil {
		return Delay{}, fmt.Errorf("delay %q: %w", s, err)
	}
	d := Delay{Min: min, Max: min}
	if isRange {
		if d.Max, err = time.ParseDuration(strings.TrimSpace(hi)); err != nil {
			return Delay{}, fmt.Errorf("delay %q: %w", s, err)
		}
	}
	if d.Min < 0 || d.Max < d.Min || d.Max > time.Minute {
		return Delay{}, fmt.Errorf("delay %q: want 0 <= min <= max <= 1m", s)
	}
	return d, nil
}

// String returns the delay as ParseDelay reads it.
func (d Delay) String() string {
	if d.Max <= d.Min {
		return d.Min.String()
	}
	return d.Min.String() + "-" + d.Max.String()
}

// DelayServer is a DNS server for benchmarks: it answers from a Resolver
// (a dnscache.Zone loaded from a zone file, typically) on a loopback
// address, waits Delay before each reply as a far-away authoritative server
// would, and counts the queries by type and name. It stands in for the
// resolver of every milter measured, so that each sees the same records
// and the same round trips.
//
// Replies are built as Serve builds them; records and negative answers
// carry TTL (RFC 2308: the SOA's minimum too), so a caching resolver in
// front of it can show what a warm cache saves. Each query is answered on
// its own goroutine: the delays of concurrent queries overlap, as they
// would on the wire.
type DelayServer struct {
	// Resolver answers the queries.
	Resolver dnscache.Resolver
	// Delay before each reply (zero: none).
	Delay Delay
	// TTL of every record and negative answer (0: 60 s).
	TTL uint32
	// Seed makes the drawn delays reproducible.
	Seed uint64

	mu     sync.Mutex
	rng    *rand.Rand
	counts map[string]int // "TYPE name" → queries
	total  int
	stop   func()
	addr   string
}

// Start listens on addr (UDP and TCP on one port; "127.0.0.1:0" picks a
// free one) and serves until Close. Only loopback addresses are accepted.
func (s *DelayServer) Start(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("dnstest: listen address %q: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return fmt.Errorf("dnstest: listen address %q: want a loopback address (127.0.0.1, ::1)", addr)
	}
	pc, ln, err := listenPair(addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.rng = rand.New(rand.NewPCG(s.Seed, s.Seed^0x5851f42d4c957f2d))
	s.counts = map[string]int{}
	s.addr = pc.LocalAddr().String()
	s.mu.Unlock()
	s.stop = serveOn(pc, ln, dns.HandlerFunc(s.serve))
	return nil
}

// listenPair opens UDP and TCP on the same address; with port 0, on the
// same free port.
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	for tries := 0; ; tries++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dnstest: %w", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if _, port, _ := net.SplitHostPort(addr); port != "0" || tries == 20 {
			return nil, nil, fmt.Errorf("dnstest: %w", err)
		}
	}
}

// Addr returns the "host:port" the server listens on.
func (s *DelayServer) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close stops the server; queries being delayed are answered first.
func (s *DelayServer) Close() {
	if s.stop != nil {
		s.stop()
	}
}

func (s *DelayServer) serve(w dns.ResponseWriter, q *dns.Msg) {
	d := s.Delay.Min
	s.mu.Lock()
	if s.Delay.Max > s.Delay.Min {
		d += time.Duration(s.rng.Int64N(int64(s.Delay.Max-s.Delay.Min) + 1))
	}
	if len(q.Question) == 1 {
		qq := q.Question[0]
		s.counts[dns.TypeToString[qq.Qtype]+" "+strings.ToLower(strings.TrimSuffix(qq.Name, "."))]++
	}
	s.total++
	s.mu.Unlock()
	ttl := s.TTL
	if ttl == 0 {
		ttl = serveTTL
	}
	m := answer(s.Resolver, q, ttl)
	if d > 0 {
		time.Sleep(d)
	}
	if m != nil {
		_ = w.WriteMsg(m)
	}
}

// QueryCount is the number of queries for one type and name.
type QueryCount struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// Counts returns the queries received since Start or the last Reset, by
// type and name, sorted by name then type, and their total.
func (s *DelayServer) Counts() ([]QueryCount, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]QueryCount, 0, len(s.counts))
	for k, n := range s.counts {
		t, name, _ := strings.Cut(k, " ")
		out = append(out, QueryCount{Type: t, Name: name, Count: n})
	}
	slices.SortFunc(out, func(a, b QueryCount) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Type, b.Type)
	})
	return out, s.total
}

// Reset forgets the counts.
func (s *DelayServer) Reset() {
	s.mu.Lock()
	s.counts = map[string]int{}
	s.total = 0
	s.mu.Unlock()
}
