package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/authmilter/authmilter/dkimsign"
	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/domain"
)

// Config is the authmilter configuration file. Every field has a default
// that works with no file at all; see configs/authmilter.yaml.
type Config struct {
	Listen     string `yaml:"listen"`
	AuthservID string `yaml:"authserv_id"`

	Log     LogConfig     `yaml:"log"`
	Metrics MetricsConfig `yaml:"metrics"`
	DNS     DNSConfig     `yaml:"dns"`
	SPF     SPFConfig     `yaml:"spf"`
	DKIM    DKIMConfig    `yaml:"dkim"`
	DMARC   DMARCConfig   `yaml:"dmarc"`
	ARC     ARCConfig     `yaml:"arc"`
	Policy  PolicyConfig  `yaml:"policy"`
	Limits  LimitsConfig  `yaml:"limits"`
	Reports ReportsConfig `yaml:"reports"`

	// Threads is the number of scheduler threads (GOMAXPROCS): "auto"
	// (the default: the Go runtime decides, from the CPUs and the
	// container's CPU limit) or a fixed number. The GOMAXPROCS
	// environment variable, when set, wins over both.
	Threads string `yaml:"threads"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// MetricsConfig enables the Prometheus endpoint.
type MetricsConfig struct {
	Listen string `yaml:"listen"` // e.g. 127.0.0.1:9895; empty: off
	// Pprof also serves net/http/pprof under /debug/pprof/ on the metrics
	// listener, which must then be a loopback address. Off by default.
	Pprof bool `yaml:"pprof"`
}

// DNSConfig configures the resolver (package dnscache).
type DNSConfig struct {
	Servers   []string      `yaml:"servers"` // default: /etc/resolv.conf
	Timeout   time.Duration `yaml:"timeout"`
	Attempts  int           `yaml:"attempts"` // rounds over the servers before a lookup fails
	ZoneFile  string        `yaml:"zone_file"`
	TrustAD   bool          `yaml:"trust_ad"`
	CacheSize int           `yaml:"cache_size"`
}

// SPFConfig configures SPF evaluation.
type SPFConfig struct {
	ReceivedSPF bool `yaml:"received_spf_header"`
}

// DKIMConfig configures DKIM verification.
type DKIMConfig struct {
	MaxSignatures int `yaml:"max_signatures"`
	// Sign configures DKIM signing of mail that is not judged.
	Sign DKIMSignConfig `yaml:"sign"`
}

// DKIMSignConfig configures DKIM signing (issue #21): mail from the sources
// whose From domain has keys is signed.
type DKIMSignConfig struct {
	Keys []dkimsign.Entry `yaml:"keys"`
	// Sources: "authenticated" (SMTP AUTH) and/or "internal"
	// (policy.internal_networks); default both.
	Sources []string `yaml:"sources"`
	// Expire sets x= to the signing time plus this; 0: no x=.
	Expire time.Duration `yaml:"expire"`
	// Headers and Oversign replace dkimsign.DefaultHeaders and
	// dkimsign.DefaultOversign.
	Headers  []string `yaml:"headers"`
	Oversign []string `yaml:"oversign"`
	// OpenDKIM tables, read unchanged ("file:/path", "refile:/path").
	OpenDKIMKeyTable           string `yaml:"opendkim_key_table"`
	OpenDKIMSigningTable       string `yaml:"opendkim_signing_table"`
	OpenDKIMMultipleSignatures bool   `yaml:"opendkim_multiple_signatures"`
}

// DMARCConfig configures DMARC evaluation.
type DMARCConfig struct {
	OrgDomain string `yaml:"org_domain"` // treewalk (RFC 9989) or psl (RFC 7489)
	// ListAction is for messages with a List-Id field that fail DMARC
	// with a reject disposition and that no trusted sealer vouches for:
	// policy (apply it), quarantine or accept.
	ListAction string `yaml:"list_action"`
}

// ARCConfig configures ARC sealing and trust.
type ARCConfig struct {
	Seal           SealConfig `yaml:"seal"`
	TrustedSealers []string   `yaml:"trusted_sealers"`
	// SealerStats: evidence on the sealers seen, for choosing
	// trusted_sealers (authmilter sealers).
	SealerStats SealerStatsConfig `yaml:"sealer_stats"`
}

// SealerStatsConfig says where the daemon keeps its evidence on ARC
// sealers and for how many sealing domains.
type SealerStatsConfig struct {
	// File is written every 5 minutes and at shutdown, and read at start;
	// empty: kept in memory (and metrics) only.
	File       string `yaml:"file"`
	MaxSealers int    `yaml:"max_sealers"`
}

// SealConfig holds the ARC sealing key; sealing is on when KeyFile is set.
type SealConfig struct {
	Domain   string   `yaml:"domain"`
	Selector string   `yaml:"selector"`
	KeyFile  string   `yaml:"key_file"`
	Headers  []string `yaml:"headers"`
}

// PolicyConfig holds what to do with the verdicts.
type PolicyConfig struct {
	// Enforce applies DMARC reject/quarantine; false only adds headers.
	Enforce *bool `yaml:"enforce"`
	// Quarantine is "hold" (the milter quarantine action: Postfix's hold
	// queue) or "header" (only the Authentication-Results header).
	Quarantine string `yaml:"quarantine"`
	// Temperror is "tempfail" (451 4.7.x, the MTA retries) or "accept".
	Temperror string `yaml:"temperror"`
	// AllowNetworks: clients in these networks are accepted whatever the
	// verdict (the header is still written).
	AllowNetworks []string `yaml:"allow_networks"`
	// AllowDomains: messages whose RFC5322.From domain is listed are never
	// rejected or quarantined by DMARC (the header is still written).
	// "dkim:DOMAIN" allows a message with a valid DKIM signature with
	// d=DOMAIN, "spf:DOMAIN" one with an SPF pass for MAIL FROM DOMAIN.
	AllowDomains []string `yaml:"allow_domains"`
	// IgnoreMailFrom: envelope-sender domains (and their subdomains)
	// never rejected or quarantined for DMARC.
	IgnoreMailFrom []string `yaml:"ignore_mail_from"`
	// IgnoreRcpt: recipient addresses, local parts (postmaster@) or
	// domains whose mail is never rejected for DMARC; a message for
	// these and other recipients too is quarantined instead.
	IgnoreRcpt []string `yaml:"ignore_rcpt"`
	// FromChecks: off, or reject (550 5.7.1) a message with no From
	// field, several, several addresses or no parsable domain.
	FromChecks string `yaml:"from_checks"`
	// IPRev: header (the default: the client's forward-confirmed reverse
	// DNS, RFC 8601 §3, in Authentication-Results, never acted on) or off.
	IPRev string `yaml:"iprev"`
	// InternalNetworks and authenticated submissions are not judged.
	InternalNetworks []string `yaml:"internal_networks"`
	// SealInternal: also ARC-seal mail from internal networks and
	// authenticated submissions.
	SealInternal bool `yaml:"seal_internal"`
}

// ReportsConfig configures DMARC aggregate reports (RFC 9990). Recording is
// off unless Enabled: a first `authmilter serve` with no configuration
// writes nothing to disk and needs no /var/lib/authmilter.
type ReportsConfig struct {
	// Enabled records every judged message whose From domain has a DMARC
	// policy into Store.
	Enabled bool `yaml:"enabled"`
	// Store is sqlite:PATH (the directory must exist) or postgres://… for
	// several hosts sharing one database.
	Store string `yaml:"store"`
	// Interval is the reporting period: 24h (UTC days) by default, down to
	// 1m for testing; it must divide a day.
	Interval time.Duration `yaml:"interval"`
	// QueueSize bounds the records waiting for the store; past it records
	// are dropped and counted.
	QueueSize int `yaml:"queue_size"`
	// Retention: periods that ended longer ago are deleted, sent or not.
	Retention time.Duration `yaml:"retention"`
	// EnvelopeTo adds the recipient domain to each row (envelope_to).
	EnvelopeTo bool `yaml:"envelope_to"`

	// Send makes the daemon send the reports of closed periods itself.
	Send             bool              `yaml:"send"`
	OrgName          string            `yaml:"org_name"`
	Email            string            `yaml:"email"` // report contact, and the From of reports
	ExtraContactInfo string            `yaml:"extra_contact_info"`
	MaxRecipients    int               `yaml:"max_recipients"`
	MaxRecords       int               `yaml:"max_records"` // 0: no limit
	ExcludeDomains   []string          `yaml:"exclude_domains"`
	SMTP             ReportsSMTPConfig `yaml:"smtp"`
}

// ReportsSMTPConfig says how reports leave.
type ReportsSMTPConfig struct {
	Address      string `yaml:"address"`
	MailFrom     string `yaml:"mail_from"`
	StartTLS     bool   `yaml:"starttls"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// LimitsConfig bounds the work one message can cause. Each bound has a
// defined outcome when exceeded (see configs/authmilter.yaml).
type LimitsConfig struct {
	MessageTimeout time.Duration `yaml:"message_timeout"`
	MaxHeaderBytes int           `yaml:"max_header_bytes"`
	MaxHeaders     int           `yaml:"max_headers"`
	// MaxHeaderFieldBytes bounds one header field, folding included; a
	// message with a longer one is passed on unverified like one over
	// max_header_bytes.
	MaxHeaderFieldBytes int           `yaml:"max_header_field_bytes"`
	IdleTimeout         time.Duration `yaml:"idle_timeout"`
	// MaxAnswerBytes bounds one DNS reply (dnscache.Config.MaxAnswerBytes):
	// a larger one is a temporary DNS failure (temperror).
	MaxAnswerBytes int `yaml:"max_answer_bytes"`
	// MaxARCInstances bounds the ARC sets validated (arc.Options.MaxInstances,
	// at most RFC 8617 §4.2.1's 50): a longer chain is arc=fail.
	MaxARCInstances int `yaml:"max_arc_instances"`
	// SPFMaxLookups and SPFMaxVoidLookups are the RFC 7208 §4.6.4 limits
	// (10 and 2): going over is spf=permerror.
	SPFMaxLookups     int `yaml:"spf_max_lookups"`
	SPFMaxVoidLookups int `yaml:"spf_max_void_lookups"`
}

// DefaultConfig returns the embedded default: listen on 127.0.0.1:8895,
// authserv-id = host name, DMARC enforced, no sealing.
func DefaultConfig() *Config {
	enforce := true
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	return &Config{
		Listen:     "inet:127.0.0.1:8895",
		AuthservID: host,
		Log:        LogConfig{Level: "info", Format: "text"},
		DNS:        DNSConfig{Timeout: 2 * time.Second, Attempts: 2, CacheSize: 10000},
		DKIM:       DKIMConfig{MaxSignatures: 5},
		DMARC:      DMARCConfig{OrgDomain: "treewalk", ListAction: "policy"},
		ARC:        ARCConfig{SealerStats: SealerStatsConfig{File: "/var/lib/authmilter/sealers.json", MaxSealers: 500}},
		Policy: PolicyConfig{
			Enforce:          &enforce,
			Quarantine:       "hold",
			Temperror:        "tempfail",
			FromChecks:       "off",
			IPRev:            "header",
			InternalNetworks: []string{"127.0.0.0/8", "::1/128"},
		},
		Limits: LimitsConfig{
			MessageTimeout:      20 * time.Second,
			MaxHeaderBytes:      1 << 20,
			MaxHeaders:          1000,
			MaxHeaderFieldBytes: 64 << 10,
			IdleTimeout:         5 * time.Minute,
			MaxAnswerBytes:      dnscache.DefaultMaxAnswerBytes,
			MaxARCInstances:     50,
			SPFMaxLookups:       10,
			SPFMaxVoidLookups:   2,
		},
		Reports: ReportsConfig{
			Store:         "sqlite:/var/lib/authmilter/reports.db",
			Interval:      24 * time.Hour,
			QueueSize:     10000,
			Retention:     30 * 24 * time.Hour,
			MaxRecipients: 2,
			SMTP:          ReportsSMTPConfig{Address: "127.0.0.1:25"},
		},
		Threads: "auto",
	}
}

// threads returns the fixed scheduler thread count of Threads, or 0 for
// "auto".
func (c *Config) threads() (int, error) {
	if c.Threads == "auto" || c.Threads == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(c.Threads)
	if err != nil || n < 1 || n > 1024 {
		return 0, fmt.Errorf("threads %q: must be auto or a number from 1 to 1024", c.Threads)
	}
	return n, nil
}

// LoadConfig reads the file at path over the defaults. Unknown keys and
// invalid values are errors naming the file and line.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(data, path)
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

// ParseConfig parses configuration text; name is used in error messages.
func ParseConfig(data []byte, name string) (*Config, error) {
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		// yaml reports "yaml: unmarshal errors:\n  line 3: field x not
		// found in type main.Config": turn each into "file:3: field x …".
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
		var lines []string
		for _, l := range strings.Split(msg, "\n") {
			l = strings.TrimSpace(l)
			if m := yamlLine.FindStringSubmatch(l); m != nil {
				l = name + ":" + m[1] + ": " + strings.Replace(l, m[0], "", 1)
			} else {
				l = name + ": " + l
			}
			l = strings.ReplaceAll(l, " in type main.", " in ")
			lines = append(lines, l)
		}
		return nil, errors.New(strings.Join(lines, "\n"))
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return cfg, nil
}

func (c *Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.AuthservID == "" || strings.ContainsAny(c.AuthservID, " \t\r\n;()\"\\") {
		add("authserv_id %q: must be a non-empty token (RFC 8601 §2.5)", c.AuthservID)
	}
	if _, err := c.threads(); err != nil {
		errs = append(errs, err)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format %q: want text or json", c.Log.Format)
	}
	switch c.DMARC.OrgDomain {
	case "treewalk", "psl":
	default:
		add("dmarc.org_domain %q: want treewalk (RFC 9989) or psl (RFC 7489)", c.DMARC.OrgDomain)
	}
	switch c.DMARC.ListAction {
	case "policy", "quarantine", "accept":
	default:
		add("dmarc.list_action %q: want policy, quarantine or accept", c.DMARC.ListAction)
	}
	switch c.Policy.IPRev {
	case "off", "header":
	default:
		add("policy.iprev %q: want off or header", c.Policy.IPRev)
	}
	switch c.Policy.FromChecks {
	case "off", "reject":
	default:
		add("policy.from_checks %q: want off or reject", c.Policy.FromChecks)
	}
	for _, e := range c.Policy.AllowDomains {
		if _, _, err := allowEntry(e); err != nil {
			add("policy.allow_domains: %v", err)
		}
	}
	for _, d := range c.Policy.IgnoreMailFrom {
		if !plausibleDomain(d) {
			add("policy.ignore_mail_from: %q is not a domain name", d)
		}
	}
	for _, r := range c.Policy.IgnoreRcpt {
		local, dom, at := strings.Cut(r, "@")
		if !at {
			local, dom = "x", r
		}
		if local == "" || (dom != "" && !plausibleDomain(dom)) || (!at && dom == "") {
			add("policy.ignore_rcpt: %q is not an address, local part (postmaster@) or domain", r)
		}
	}
	switch c.Policy.Quarantine {
	case "hold", "header":
	default:
		add("policy.quarantine %q: want hold or header", c.Policy.Quarantine)
	}
	switch c.Policy.Temperror {
	case "tempfail", "accept":
	default:
		add("policy.temperror %q: want tempfail or accept", c.Policy.Temperror)
	}
	for _, field := range []struct {
		name string
		list []string
	}{{"policy.allow_networks", c.Policy.AllowNetworks}, {"policy.internal_networks", c.Policy.InternalNetworks}} {
		for _, n := range field.list {
			if _, err := parsePrefix(n); err != nil {
				add("%s: %v", field.name, err)
			}
		}
	}
	for _, src := range c.DKIM.Sign.Sources {
		if src != "authenticated" && src != "internal" {
			add("dkim.sign.sources %q: want authenticated or internal", src)
		}
	}
	if c.DKIM.Sign.Expire < 0 {
		add("dkim.sign.expire %s: must not be negative", c.DKIM.Sign.Expire)
	}
	if err := dkimsign.CheckHeaderNames(c.DKIM.Sign.Headers); err != nil {
		add("dkim.sign.headers: %v", err)
	}
	if err := dkimsign.CheckHeaderNames(c.DKIM.Sign.Oversign); err != nil {
		add("dkim.sign.oversign: %v", err)
	}
	if (c.DKIM.Sign.OpenDKIMKeyTable == "") != (c.DKIM.Sign.OpenDKIMSigningTable == "") {
		add("dkim.sign: opendkim_key_table and opendkim_signing_table go together")
	}
	// Domain lists compare as A-labels: a U-label and its A-label are the
	// same domain (RFC 8616), so either may be written.
	for _, field := range []struct {
		name string
		list []string
	}{{"arc.trusted_sealers", c.ARC.TrustedSealers}} { // allow_domains: allowEntry
		for _, d := range field.list {
			if _, err := domain.Parse(strings.TrimSpace(d)); err != nil {
				add("%s: %v", field.name, err)
			}
		}
	}
	if s := c.ARC.Seal; s.KeyFile != "" || s.Domain != "" || s.Selector != "" {
		if s.KeyFile == "" || s.Domain == "" || s.Selector == "" {
			add("arc.seal: domain, selector and key_file must all be set to seal")
		}
		for _, v := range []struct{ name, value string }{{"domain", s.Domain}, {"selector", s.Selector}} {
			if _, err := domain.Parse(v.value); v.value != "" && err != nil {
				add("arc.seal.%s: %v", v.name, err)
			}
		}
	}
	if n := c.ARC.SealerStats.MaxSealers; n < 1 || n > 100000 {
		add("arc.sealer_stats.max_sealers %d: want 1 to 100000", n)
	}
	if c.Metrics.Pprof {
		if c.Metrics.Listen == "" {
			add("metrics.pprof: needs metrics.listen (a loopback address)")
		} else if !loopbackHostPort(c.Metrics.Listen) {
			add("metrics.pprof: metrics.listen %q is not a loopback address; profiles are served on loopback only", c.Metrics.Listen)
		}
	}
	if c.DKIM.MaxSignatures < 1 {
		add("dkim.max_signatures %d: must be at least 1", c.DKIM.MaxSignatures)
	}
	if c.DNS.Attempts < 1 || c.DNS.Attempts > 5 {
		add("dns.attempts %d: want 1 to 5", c.DNS.Attempts)
	}
	if c.Limits.MessageTimeout <= 0 {
		add("limits.message_timeout must be positive")
	}
	// RFC 5322 §2.1.1: a line may be 998 octets; a field several lines.
	if c.Limits.MaxHeaderFieldBytes < 1000 || c.Limits.MaxHeaders < 10 || c.Limits.MaxHeaderBytes < c.Limits.MaxHeaderFieldBytes {
		add("limits: max_header_field_bytes (%d) must be at least 1000, max_headers (%d) at least 10, and max_header_bytes (%d) at least max_header_field_bytes",
			c.Limits.MaxHeaderFieldBytes, c.Limits.MaxHeaders, c.Limits.MaxHeaderBytes)
	}
	if n := c.Limits.MaxAnswerBytes; n < dnscache.MinMaxAnswerBytes || n > dnscache.DefaultMaxAnswerBytes {
		add("limits.max_answer_bytes %d: want %d to %d (RFC 1035 §2.3.4, §4.2.2)", n, dnscache.MinMaxAnswerBytes, dnscache.DefaultMaxAnswerBytes)
	}
	if n := c.Limits.MaxARCInstances; n < 1 || n > 50 {
		add("limits.max_arc_instances %d: want 1 to 50 (RFC 8617 §4.2.1)", n)
	}
	if n := c.Limits.SPFMaxLookups; n < 1 || n > 10 {
		add("limits.spf_max_lookups %d: want 1 to 10 (RFC 7208 §4.6.4)", n)
	}
	if c.Limits.SPFMaxVoidLookups < 1 {
		add("limits.spf_max_void_lookups %d: must be at least 1", c.Limits.SPFMaxVoidLookups)
	}
	errs = append(errs, c.Reports.validate()...)
	return errors.Join(errs...)
}

func (r *ReportsConfig) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !strings.HasPrefix(r.Store, "sqlite:") && !strings.HasPrefix(r.Store, "postgres://") && !strings.HasPrefix(r.Store, "postgresql://") {
		add("reports.store %q: want sqlite:PATH or postgres://…", r.Store)
	}
	if iv := r.Interval; iv < time.Minute || iv > 24*time.Hour || iv%time.Second != 0 || (24*time.Hour)%iv != 0 {
		add("reports.interval %s: want 1m to 24h, dividing a day (periods start at 0000 UTC)", iv)
	}
	if r.QueueSize < 1 {
		add("reports.queue_size %d: must be at least 1", r.QueueSize)
	}
	if r.Retention < r.Interval {
		add("reports.retention %s: must be at least reports.interval", r.Retention)
	}
	if r.MaxRecipients < 1 {
		add("reports.max_recipients %d: must be at least 1", r.MaxRecipients)
	}
	if r.MaxRecords < 0 {
		add("reports.max_records %d: 0 (no limit) or more", r.MaxRecords)
	}
	if r.Send {
		if r.OrgName == "" {
			add("reports.send: needs reports.org_name")
		}
		if at := strings.LastIndexByte(r.Email, '@'); at <= 0 || at == len(r.Email)-1 {
			add("reports.send: reports.email %q must be an address (the reports' From)", r.Email)
		}
	}
	if _, _, err := net.SplitHostPort(r.SMTP.Address); err != nil {
		add("reports.smtp.address %q: want HOST:PORT", r.SMTP.Address)
	}
	if (r.SMTP.Username == "") != (r.SMTP.PasswordFile == "") {
		add("reports.smtp: username and password_file go together")
	}
	return errs
}

// loopbackHostPort reports whether hostport ("127.0.0.1:9895", "[::1]:9895",
// "localhost:9895") names a loopback address.
func loopbackHostPort(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// parsePrefix accepts a CIDR prefix or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// allowEntry splits an allow_domains entry: "example.com" (the From
// domain), "dkim:example.com" or "spf:example.com".
func allowEntry(e string) (kind, domain string, err error) {
	kind, domain = "from", e
	if k, d, ok := strings.Cut(e, ":"); ok {
		kind, domain = strings.ToLower(strings.TrimSpace(k)), d
		if kind != "dkim" && kind != "spf" {
			return "", "", fmt.Errorf("%q: want DOMAIN, dkim:DOMAIN or spf:DOMAIN", e)
		}
	}
	domain = strings.TrimSpace(domain)
	if _, err := parseDomain(domain); err != nil {
		if kind == "from" {
			return "", "", err
		}
		return "", "", fmt.Errorf("%q: %w", e, err)
	}
	return kind, domain, nil
}

// plausibleDomain reports whether s is a domain name (U-labels or
// A-labels, domain.Parse).
func plausibleDomain(s string) bool {
	_, err := parseDomain(s)
	return err == nil
}

func parseDomain(s string) (domain.Name, error) { return domain.Parse(strings.TrimSpace(s)) }
