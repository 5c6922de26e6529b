package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/dkimsign"
	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/domain"
	"github.com/authmilter/authmilter/engine"
	"github.com/authmilter/authmilter/verify/dkim"
	"github.com/authmilter/authmilter/verify/dmarc"
	"github.com/authmilter/authmilter/verify/spf"
)

// dnsConfig turns the dns section (and limits.max_answer_bytes) into the
// resolver's configuration.
func dnsConfig(cfg *Config) dnscache.Config {
	c := cfg.DNS
	return dnscache.Config{
		Servers:        c.Servers,
		Timeout:        c.Timeout,
		Attempts:       c.Attempts,
		TrustAD:        c.TrustAD,
		CacheSize:      c.CacheSize,
		ZoneFile:       c.ZoneFile,
		MaxAnswerBytes: cfg.Limits.MaxAnswerBytes,
	}
}

// newEngine builds the evaluation engine of cfg over resolver r.
func newEngine(cfg *Config, r dnscache.Resolver, logger *slog.Logger, m *engine.Metrics) (*engine.Engine, error) {
	pol := engine.Policy{
		Enforce:        cfg.Policy.Enforce == nil || *cfg.Policy.Enforce,
		Quarantine:     engine.QuarantineMode(cfg.Policy.Quarantine),
		Temperror:      engine.TemperrorMode(cfg.Policy.Temperror),
		SealInternal:   cfg.Policy.SealInternal,
		TrustedSealers: aLabels(cfg.ARC.TrustedSealers),
		IgnoreMailFrom: aLabels(cfg.Policy.IgnoreMailFrom),
		IgnoreRcpt:     rcptEntries(cfg.Policy.IgnoreRcpt),
		ListAction:     engine.ListAction(cfg.DMARC.ListAction),
		FromChecks:     engine.FromChecks(cfg.Policy.FromChecks),
		IPRev:          engine.IPRevMode(cfg.Policy.IPRev),
	}
	for _, entry := range cfg.Policy.AllowDomains {
		kind, dom, err := allowEntry(entry)
		if err != nil {
			return nil, fmt.Errorf("policy.allow_domains: %w", err)
		}
		dom = aLabel(dom)
		switch kind {
		case "dkim":
			pol.AllowDKIM = append(pol.AllowDKIM, dom)
		case "spf":
			pol.AllowSPF = append(pol.AllowSPF, dom)
		default:
			pol.AllowDomains = append(pol.AllowDomains, dom)
		}
	}
	var err error
	if pol.AllowNetworks, err = prefixes(cfg.Policy.AllowNetworks); err != nil {
		return nil, fmt.Errorf("policy.allow_networks: %w", err)
	}
	if pol.InternalNetworks, err = prefixes(cfg.Policy.InternalNetworks); err != nil {
		return nil, fmt.Errorf("policy.internal_networks: %w", err)
	}
	e := &engine.Engine{
		Resolver:            r,
		AuthservID:          cfg.AuthservID,
		Policy:              pol,
		DKIM:                &dkim.Options{MaxSignatures: cfg.DKIM.MaxSignatures},
		SPF:                 &spf.Options{MaxLookups: cfg.Limits.SPFMaxLookups, MaxVoidLookups: cfg.Limits.SPFMaxVoidLookups},
		DMARC:               &dmarc.Options{},
		ARC:                 &arc.Options{MaxInstances: cfg.Limits.MaxARCInstances},
		ReceivedSPF:         cfg.SPF.ReceivedSPF,
		Timeout:             cfg.Limits.MessageTimeout,
		MaxHeaderBytes:      cfg.Limits.MaxHeaderBytes,
		MaxHeaders:          cfg.Limits.MaxHeaders,
		MaxHeaderFieldBytes: cfg.Limits.MaxHeaderFieldBytes,
		Logger:              logger,
		Metrics:             m,
	}
	if cfg.DMARC.OrgDomain == "psl" {
		e.DMARC.Finder = dmarc.PSL{}
	}
	if s := cfg.ARC.Seal; s.KeyFile != "" {
		key, err := arc.LoadKey(s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("arc.seal.key_file: %w", err)
		}
		// The seal's d= and s= go into any message: A-labels (RFC 8616).
		e.Sealer = &arc.Sealer{Domain: aLabel(s.Domain), Selector: aLabel(s.Selector), Key: key, Headers: s.Headers}
	}
	if e.Signing, err = signing(cfg, logger); err != nil {
		return nil, err
	}
	return e, nil
}

// signing loads the DKIM signing keys of cfg (dkim.sign); nil when none
// are configured. Called at start and on every SIGHUP, so a selector
// rotation is a configuration change and a reload.
func signing(cfg *Config, logger *slog.Logger) (*engine.Signing, error) {
	c := cfg.DKIM.Sign
	if len(c.Keys) == 0 && c.OpenDKIMKeyTable == "" {
		return nil, nil
	}
	table, warnings, err := dkimsign.Load(c.Keys)
	if err != nil {
		return nil, fmt.Errorf("dkim.sign.keys: %w", err)
	}
	if c.OpenDKIMKeyTable != "" {
		o, w, err := dkimsign.LoadOpenDKIM(c.OpenDKIMKeyTable, c.OpenDKIMSigningTable, c.OpenDKIMMultipleSignatures)
		if err != nil {
			return nil, fmt.Errorf("dkim.sign.opendkim_key_table/opendkim_signing_table: %w", err)
		}
		warnings = append(warnings, w...)
		table = table.WithOpenDKIM(o)
	}
	for _, w := range warnings {
		if logger != nil {
			logger.Warn("dkim.sign: " + w)
		}
	}
	s := &engine.Signing{
		Keys:    table,
		Options: &dkimsign.Options{Expire: c.Expire},
	}
	// An empty list in the file means the default, not "sign nothing".
	if len(c.Headers) > 0 {
		s.Options.Headers = c.Headers
	}
	if len(c.Oversign) > 0 {
		s.Options.Oversign = c.Oversign
	}
	if err := s.Options.Prepare(); err != nil {
		return nil, fmt.Errorf("dkim.sign.headers/oversign: %w", err)
	}
	if len(c.Sources) == 0 {
		s.Authenticated, s.Internal = true, true
	}
	for _, src := range c.Sources {
		s.Authenticated = s.Authenticated || src == "authenticated"
		s.Internal = s.Internal || src == "internal"
	}
	return s, nil
}

// aLabels returns the names of a configured list in the form the policy
// compares (domain.Parse: A-labels, lower case, no trailing dot), so that
// a U-label and its A-label match (RFC 8616). validate has checked them.
func aLabels(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = aLabel(s)
	}
	return out
}

// rcptEntries normalises policy.ignore_rcpt: the domain of an address or
// a domain entry as A-labels, a local part in lower case.
func rcptEntries(list []string) []string {
	out := make([]string, len(list))
	for i, e := range list {
		e = strings.TrimSpace(e)
		if local, dom, ok := strings.Cut(e, "@"); ok {
			if dom != "" {
				dom = aLabel(dom)
			}
			out[i] = strings.ToLower(local) + "@" + dom
		} else {
			out[i] = aLabel(e)
		}
	}
	return out
}

func aLabel(s string) string {
	if d, err := domain.Parse(strings.TrimSpace(s)); err == nil {
		return d.ASCII
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

func prefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
