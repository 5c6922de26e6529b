package dnscache

import "time"

// Config configures the resolver stack New builds: a Client, a Cache in
// front of it, and optionally a zone-file override in front of both. Every
// zero value means the default given on the field.
type Config struct {
	// Servers are the upstream recursive resolvers, as "192.0.2.53",
	// "192.0.2.53:53", "2001:db8::53" or "[2001:db8::53]:5353". Default:
	// the nameserver lines of ResolvConf.
	Servers []string
	// ResolvConf is read when Servers is empty. Default: /etc/resolv.conf.
	// Only its nameserver lines are used; Timeout and Attempts come from
	// this Config.
	ResolvConf string
	// Timeout bounds one exchange with one server, including a retry over
	// TCP after a truncated UDP reply. The caller's context bounds the
	// whole lookup. Default: 2s.
	Timeout time.Duration
	// Attempts is how many times each server is tried, in turn, before a
	// lookup fails. Default: 2.
	Attempts int
	// TrustAD marks the upstream servers as validating resolvers reached
	// over a trusted path (typically a local resolver on loopback), so that
	// the AD bit of their answers sets AnswerInfo.Authentic (RFC 6840 §5.8).
	TrustAD bool
	// MaxAnswerBytes bounds the size of one reply, in octets on the wire
	// (UDP datagram or TCP message). A larger reply is not unpacked: the
	// lookup fails with a temporary error (ErrTemporary), as for a reply
	// that cannot be used, so that no verifier turns an answer it never
	// saw into "no record" (RFC 7208 §4.4 temperror, RFC 6376 §6.1.2
	// TEMPFAIL, RFC 9989 temperror). Default: 65535, the most a DNS
	// message can hold over TCP (RFC 1035 §4.2.2), so that only a lower
	// setting refuses anything; values under 512 (RFC 1035 §2.3.4) are
	// raised to 512.
	MaxAnswerBytes int

	// CacheSize is the number of answers (positive or negative) kept.
	// Default: 10000. A negative value turns the cache off.
	CacheSize int
	// MinTTL is the shortest time an answer is kept, whatever its TTL.
	// Default: 30s. A negative value means no floor.
	MinTTL time.Duration
	// MaxTTL is the longest time a positive answer is kept. Default: 24h.
	MaxTTL time.Duration
	// NegativeTTL is how long NXDOMAIN and NODATA answers without an SOA
	// record (so without an RFC 2308 TTL) are kept. Default: 5m.
	NegativeTTL time.Duration
	// MaxNegativeTTL is the longest time a negative answer is kept
	// (RFC 2308 §5). Default: 1h.
	MaxNegativeTTL time.Duration
	// TempFailTTL is how long a temporary failure (SERVFAIL, timeout, ...)
	// is remembered, so that a burst of messages does not hammer a failing
	// server (RFC 2308 §7 allows up to 5 minutes). Default: 2s. A negative
	// value means temporary failures are never cached.
	TempFailTTL time.Duration

	// ZoneFile names an RFC 1035 master file whose names are answered from
	// the file only (see LoadZone and Overlay). Default: none.
	ZoneFile string

	// Now is the cache's clock. Default: time.Now.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultResolvConf     = "/etc/resolv.conf"
	DefaultTimeout        = 2 * time.Second
	DefaultAttempts       = 2
	DefaultCacheSize      = 10000
	DefaultMinTTL         = 30 * time.Second
	DefaultMaxTTL         = 24 * time.Hour
	DefaultNegativeTTL    = 5 * time.Minute
	DefaultMaxNegativeTTL = time.Hour
	DefaultTempFailTTL    = 2 * time.Second
	DefaultMaxAnswerBytes = 65535
	// MinMaxAnswerBytes is the smallest MaxAnswerBytes honoured: the DNS
	// message size every implementation must accept (RFC 1035 §2.3.4).
	MinMaxAnswerBytes = 512
)

// withDefaults returns cfg with every zero field set to its default and
// the "off" values (negative) normalised to zero.
func (cfg Config) withDefaults() Config {
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = DefaultResolvConf
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	switch {
	case cfg.MaxAnswerBytes <= 0:
		cfg.MaxAnswerBytes = DefaultMaxAnswerBytes
	case cfg.MaxAnswerBytes < MinMaxAnswerBytes:
		cfg.MaxAnswerBytes = MinMaxAnswerBytes
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	cfg.MinTTL = orDefault(cfg.MinTTL, DefaultMinTTL)
	cfg.MaxTTL = orDefault(cfg.MaxTTL, DefaultMaxTTL)
	cfg.NegativeTTL = orDefault(cfg.NegativeTTL, DefaultNegativeTTL)
	cfg.MaxNegativeTTL = orDefault(cfg.MaxNegativeTTL, DefaultMaxNegativeTTL)
	cfg.TempFailTTL = orDefault(cfg.TempFailTTL, DefaultTempFailTTL)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}

// orDefault maps zero to def and a negative duration to zero ("off").
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}
