package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/audit"
	"github.com/authmilter/authmilter/dnscache"
)

// errAuditFailed is returned when a check failed (exit status 1).
var errAuditFailed = errors.New("audit: checks failed")

// runAudit implements `authmilter audit`: the DNS records of each domain
// checked (package audit). Exit status 0 when no check failed, 1 when one
// did, 2 on a usage error (including an unreadable --config, --zone or
// --ca-file).
func runAudit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file: its resolvers, and its keys for dkim.key_match")
	zone := fs.String("zone", "", "answer DNS from this RFC 1035 zone file only (no network)")
	format := fs.String("format", "text", "output: text or json")
	caFile := fs.String("ca-file", "", "PEM file of CA certificates trusted for MTA-STS policies, besides the system's")
	timeout := fs.Duration("timeout", audit.DefaultTimeout, "time allowed to each group of checks")
	var selectors stringList
	fs.Var(&selectors, "dkim-selector", "DKIM selector to check (repeatable)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *format != "text" && *format != "json" {
		return usageError{fmt.Errorf("audit: --format %q: want text or json", *format)}
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("audit: give at least one domain")}
	}
	for _, d := range fs.Args() {
		if _, err := audit.ParseDomain(d); err != nil {
			return usageError{fmt.Errorf("audit: %w", err)}
		}
	}
	if *timeout <= 0 {
		return usageError{fmt.Errorf("audit: --timeout %v: want a positive duration", *timeout)}
	}

	cfg := DefaultConfig()
	var keys []audit.Key
	if *path != "" {
		var err error
		if cfg, err = LoadConfig(*path); err != nil {
			return usageError{err}
		}
		if keys, err = configuredKeys(cfg, fs.Args()); err != nil {
			return usageError{err}
		}
	}
	r, err := newResolver(cfg, *zone)
	if err != nil {
		return usageError{err}
	}
	roots, err := certPool(*caFile)
	if err != nil {
		return usageError{err}
	}
	opts := &audit.Options{
		Resolver:   r,
		HTTPClient: audit.NewHTTPClient(r, roots, time.Now),
		Now:        time.Now,
		Selectors:  selectors,
		Keys:       keys,
		Timeout:    *timeout,
	}

	domains := fs.Args()
	reports := make([]audit.Report, len(domains))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, d := range domains {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			reports[i] = audit.Domain(context.Background(), d, opts)
		})
	}
	wg.Wait()

	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		var v any = reports
		if len(reports) == 1 {
			v = reports[0]
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	} else if err := writeAuditText(stdout, reports, isTerminal(stdout)); err != nil {
		return err
	}
	failed := 0
	for _, rep := range reports {
		for _, c := range rep.Checks {
			if c.Status == audit.StatusFail {
				failed++
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d", errAuditFailed, failed)
	}
	return nil
}

// newResolver returns the resolver of check and audit: the zone file alone
// when one is given, else the configured resolvers.
func newResolver(cfg *Config, zoneFile string) (dnscache.Resolver, error) {
	if zoneFile != "" {
		return dnscache.LoadZoneFile(zoneFile)
	}
	r, err := dnscache.New(dnsConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	return r, nil
}

// configuredKeys returns the public halves of the configured private keys
// that sign for the audited domains: the ARC sealing key and the DKIM
// signing keys (dkim.sign.keys and the OpenDKIM tables) that the signer
// would use for mail from those domains, so dkim.key checks their selectors
// and dkim.key_match compares them with what is published.
func configuredKeys(cfg *Config, domains []string) ([]audit.Key, error) {
	var keys []audit.Key
	if s := cfg.ARC.Seal; s.KeyFile != "" {
		k, err := arc.LoadKey(s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("arc.seal.key_file: %w", err)
		}
		keys = append(keys, audit.Key{
			Domain: s.Domain, Selector: s.Selector, Public: k.Public(),
			Source: "arc.seal.key_file " + s.KeyFile,
		})
	}
	sign, err := signing(cfg, nil)
	if err != nil || sign == nil {
		return keys, err
	}
	for _, d := range domains {
		name, err := audit.ParseDomain(d)
		if err != nil {
			continue // refused as a usage error before
		}
		for _, k := range sign.Keys.Keys("postmaster@" + name) {
			keys = append(keys, audit.Key{
				Domain: k.Domain, Selector: k.Selector, Public: k.Signer.Public(),
				Source: "dkim.sign key for " + k.Domain + " selector " + k.Selector,
			})
		}
	}
	return keys, nil
}

// certPool returns the system's roots plus the certificates of file (nil,
// the system's alone, when file is empty).
func certPool(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("audit: --ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("audit: --ca-file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// isTerminal reports whether w is a terminal that takes colour (not when
// NO_COLOR is set or TERM is dumb).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

var statusColour = map[audit.Status]string{
	audit.StatusPass: "\x1b[32m", // green
	audit.StatusInfo: "\x1b[36m", // cyan
	audit.StatusWarn: "\x1b[33m", // yellow
	audit.StatusFail: "\x1b[31m", // red
}

// writeAuditText writes one line per check: status, id, what was found and,
// unless it passed, how to fix it.
func writeAuditText(w io.Writer, reports []audit.Report, colour bool) error {
	var b strings.Builder
	for i, rep := range reports {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s\n", rep.Domain)
		counts := map[audit.Status]int{}
		for _, c := range rep.Checks {
			counts[c.Status]++
			status := fmt.Sprintf("%-4s", c.Status)
			if colour {
				status = statusColour[c.Status] + status + "\x1b[0m"
			}
			// Detail and Fix quote DNS and HTTP data of the audited
			// domain: its control characters (escape sequences) must not
			// reach the terminal (printable, as for sealer domains).
			line := "  " + status + "  " + fmt.Sprintf("%-16s ", c.ID) + printable(strings.ReplaceAll(c.Detail, "\n", " "))
			if c.Fix != "" {
				line += " — fix: " + printable(strings.ReplaceAll(c.Fix, "\n", " "))
			}
			b.WriteString(line + "\n")
		}
		fmt.Fprintf(&b, "  %d pass, %d info, %d warn, %d fail\n",
			counts[audit.StatusPass], counts[audit.StatusInfo], counts[audit.StatusWarn], counts[audit.StatusFail])
	}
	_, err := io.WriteString(w, b.String())
	return err
}
