package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
)

// dnsMain implements `milterload dns`: a DNS server for benchmarks that
// answers from a zone file on a loopback address, after a delay per query
// (fixed, or drawn uniformly from a range), and counts the queries by type
// and name. Point every milter measured at it (authmilter dns.servers,
// OpenDKIM Nameservers, the resolv.conf OpenDMARC and rspamd read) and
// they all see the same records and the same round trips.
//
// The counts are written as JSON ({"total", "queries": [{"type", "name",
// "count"}]}) to --counts (or standard output) on SIGUSR1, which also
// starts a new count when --reset is given, and when the server stops
// (SIGINT, SIGTERM, or --max-time).
func dnsMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("milterload dns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c dnsConfig
	fs.StringVar(&c.zone, "zone", "", "RFC 1035 zone file to answer from (required); names outside it are NXDOMAIN")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:5353", "UDP and TCP address (loopback only; port 0: any free port)")
	delay := fs.String("delay", "0s", "delay before each reply: fixed (20ms) or a uniform range (5ms-80ms)")
	ttl := fs.Uint("ttl", 300, "TTL of every answer, negative ones included (RFC 2308), in seconds")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the drawn delays")
	fs.StringVar(&c.counts, "counts", "", "file the query counts are written to (default: standard output)")
	fs.BoolVar(&c.reset, "reset", false, "SIGUSR1 also starts a new count")
	fs.DurationVar(&c.maxTime, "max-time", time.Hour, "stop after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errors.New("dns takes no arguments besides its flags")
	}
	if c.zone == "" {
		return errors.New("dns: --zone is required")
	}
	var err error
	if c.delay, err = dnstest.ParseDelay(*delay); err != nil {
		return fmt.Errorf("--delay: %w", err)
	}
	if *ttl == 0 || *ttl > 86400 {
		return fmt.Errorf("--ttl %d: want 1 to 86400", *ttl)
	}
	c.ttl = uint32(*ttl)
	if c.maxTime <= 0 || c.maxTime > maxDuration {
		return fmt.Errorf("--max-time %v: want more than 0 and at most %v", c.maxTime, maxDuration)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGTERM)
	defer signal.Stop(sig)
	return runDNS(ctx, c, stdout, stderr, sig, nil, nil)
}

// dnsConfig is what `milterload dns` was asked for.
type dnsConfig struct {
	zone, listen, counts string
	delay                dnstest.Delay
	ttl                  uint32
	seed                 uint64
	reset                bool
	maxTime              time.Duration
}

// dnsCounts is the JSON form of the query counts.
type dnsCounts struct {
	Total   int                  `json:"total"`
	Queries []dnstest.QueryCount `json:"queries"`
}

// runDNS serves until ctx ends, SIGTERM arrives on sig or c.maxTime
// passes; SIGUSR1 on sig writes the counts. ready, if not nil, is told the
// address once the server listens; written, if not nil, is called after
// each write the SIGUSR1 asked for (and its reset).
func runDNS(ctx context.Context, c dnsConfig, stdout, stderr io.Writer, sig <-chan os.Signal, ready func(addr string), written func()) error {
	z, err := dnscache.LoadZoneFile(c.zone)
	if err != nil {
		return err
	}
	s := &dnstest.DelayServer{Resolver: z, Delay: c.delay, TTL: c.ttl, Seed: c.seed}
	if err := s.Start(c.listen); err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(stderr, "milterload dns: listening on %s (udp and tcp), delay %s, ttl %ds\n", s.Addr(), c.delay, c.ttl)
	if ready != nil {
		ready(s.Addr())
	}
	write := func() error {
		q, total := s.Counts()
		data, err := json.MarshalIndent(dnsCounts{Total: total, Queries: q}, "", "  ")
		if err != nil {
			return err
		}
		data = append(data, '\n')
		if c.counts == "" {
			_, err = stdout.Write(data)
			return err
		}
		// Written whole, then renamed: a reader never sees half a file.
		tmp := filepath.Join(filepath.Dir(c.counts), "."+filepath.Base(c.counts)+".tmp")
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, c.counts)
	}
	timer := time.NewTimer(c.maxTime)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return write()
		case <-timer.C:
			return write()
		case s2 := <-sig:
			if s2 != syscall.SIGUSR1 {
				return write()
			}
			if err := write(); err != nil {
				return err
			}
			if c.reset {
				s.Reset()
			}
			if written != nil {
				written()
			}
		}
	}
}
