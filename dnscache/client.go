package dnscache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// Client is a Resolver that asks upstream recursive resolvers, over UDP
// with a retry over TCP when a reply is truncated. It keeps no cache (wrap
// it in a Cache) and is safe for concurrent use.
//
// Each server is tried in turn, and the round repeated Config.Attempts
// times, as long as the servers fail temporarily (timeout, network error,
// SERVFAIL, REFUSED, any other error code, a malformed reply, or one over
// Config.MaxAnswerBytes); an
// answer, NXDOMAIN or NODATA ends the lookup.
type Client struct {
	servers  []string
	timeout  time.Duration
	attempts int
	trustAD  bool
	maxBytes int // Config.MaxAnswerBytes
}

// NewClient returns a Client for cfg.Servers, or for the nameservers of
// cfg.ResolvConf when there are none. It reads Timeout, Attempts and
// TrustAD and MaxAnswerBytes from cfg; the cache fields are ignored.
func NewClient(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	servers := cfg.Servers
	if len(servers) == 0 {
		cc, err := dns.ClientConfigFromFile(cfg.ResolvConf)
		if err != nil {
			return nil, fmt.Errorf("dnscache: reading %s: %w", cfg.ResolvConf, err)
		}
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cc.Port))
		}
		if len(servers) == 0 {
			return nil, fmt.Errorf("dnscache: %s: no nameserver line", cfg.ResolvConf)
		}
	}
	c := &Client{timeout: cfg.Timeout, attempts: cfg.Attempts, trustAD: cfg.TrustAD, maxBytes: cfg.MaxAnswerBytes}
	for _, s := range servers {
		addr, err := ParseServer(s)
		if err != nil {
			return nil, err
		}
		c.servers = append(c.servers, addr)
	}
	return c, nil
}

// ParseServer returns the address of a DNS server given as an IP address,
// optionally with a port ("192.0.2.53", "192.0.2.53:5353", "2001:db8::53",
// "[2001:db8::53]:5353"), in host:port form. The port defaults to 53.
func ParseServer(s string) (string, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return "", fmt.Errorf("dnscache: server %q: port 0", s)
		}
		return ap.String(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53).String(), nil
	}
	return "", fmt.Errorf("dnscache: server %q: not an IP address with an optional port", s)
}

// Servers returns the addresses the client asks, in order.
func (c *Client) Servers() []string {
	return append([]string(nil), c.servers...)
}

// budget is the longest a lookup can take: every attempt at every server
// timing out.
func (c *Client) budget() time.Duration {
	return c.timeout * time.Duration(c.attempts*len(c.servers))
}

// query implements querier.
func (c *Client) query(ctx context.Context, qtype uint16, name string) (*answer, error) {
	if p := cacheOnlyOf(ctx); p != nil {
		return nil, p.notCached(name) // cache-only mode: nothing is sent
	}
	var last error
	for range c.attempts {
		for _, server := range c.servers {
			if err := ctx.Err(); err != nil {
				return nil, contextError(name, server, err)
			}
			a, done, err := c.askServer(ctx, server, qtype, name)
			if done {
				return a, err
			}
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, contextError(name, server, ctxErr)
			}
			last = err
		}
	}
	return nil, last
}

// askServer asks one server, over UDP and then over TCP if the reply was
// truncated, within one Timeout. done reports a final outcome (an answer,
// NXDOMAIN or NODATA); otherwise err is a temporary failure worth trying
// elsewhere.
func (c *Client) askServer(ctx context.Context, server string, qtype uint16, name string) (a *answer, done bool, err error) {
	deadline := time.Now().Add(c.timeout)
	q := newQuery(qtype, name)
	r, err := exchange(ctx, "udp", server, q, deadline, c.maxBytes)
	if err == nil && r.Truncated {
		// RFC 7766 §5 (RFC 1035 §4.2.1): a truncated UDP reply is retried
		// over TCP, at the same server.
		r, err = exchange(ctx, "tcp", server, q, deadline, c.maxBytes)
		if err == nil && r.Truncated {
			err = errMalformed("truncated reply over TCP")
		}
	}
	if err != nil {
		return nil, false, transportError(name, server, err)
	}
	return interpret(r, qtype, name, server, c.trustAD)
}

// newQuery builds the query for name (normalised) and qtype: recursion
// desired, EDNS0 (RFC 6891) with a 1232-octet buffer (the DNS flag day 2020
// size, avoiding IP fragmentation) and the DO bit, and the AD bit set so a
// validating resolver reports whether the answer was authenticated
// (RFC 6840 §5.7).
func newQuery(qtype uint16, name string) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name+".", qtype)
	m.SetEdns0(1232, true)
	m.AuthenticatedData = true
	return m
}

// errMalformed is a reply that cannot be used.
type errMalformed string

func (e errMalformed) Error() string { return "malformed reply: " + string(e) }

// transportError turns a failed exchange into a temporary *net.DNSError,
// flagged as a timeout when it was one.
func transportError(name, server string, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return NewError(ErrTemporary, name, server, "timed out", true)
	}
	return NewError(ErrTemporary, name, server, err.Error(), false)
}

// contextError is the error of a lookup abandoned because ctx ended.
func contextError(name, server string, err error) error {
	return NewError(ErrTemporary, name, server, err.Error(), errors.Is(err, context.DeadlineExceeded))
}

// LookupTXT implements Resolver.
func (c *Client) LookupTXT(ctx context.Context, name string) ([]string, AnswerInfo, error) {
	return lookupTXT(ctx, c, name)
}

// LookupA implements Resolver.
func (c *Client) LookupA(ctx context.Context, name string) ([]netip.Addr, AnswerInfo, error) {
	return lookupA(ctx, c, name)
}

// LookupAAAA implements Resolver.
func (c *Client) LookupAAAA(ctx context.Context, name string) ([]netip.Addr, AnswerInfo, error) {
	return lookupAAAA(ctx, c, name)
}

// LookupMX implements Resolver.
func (c *Client) LookupMX(ctx context.Context, name string) ([]MX, AnswerInfo, error) {
	return lookupMX(ctx, c, name)
}

// LookupPTR implements Resolver.
func (c *Client) LookupPTR(ctx context.Context, addr netip.Addr) ([]string, AnswerInfo, error) {
	return lookupPTR(ctx, c, addr)
}

var _ Resolver = (*Client)(nil)
