// Command milterload replays a corpus of messages to a milter as Postfix
// drives one (option negotiation, connect and HELO with their macros, MAIL,
// RCPT, each header field, end of headers, the body in chunks of at most
// 65535 bytes, end of message, QUIT; with Nagle's algorithm on and the
// commands the milter does not answer gathered into the writes Postfix 3.7
// makes: the envelope at DATA, the content at end of message), at a chosen
// number of concurrent
// sessions, and reports messages per second, the latency from MAIL to the
// final reply (p50, p95, p99), the mix of actions and, given the milter's
// process id, its CPU time per message and memory from /proc. It checks
// nothing about the answers beyond recording them.
//
// Usage:
//
//	milterload [flags] CORPUS-DIR
//	milterload calibrate
//	milterload null [--listen inet:127.0.0.1:PORT]
//	milterload dns --zone FILE [--listen 127.0.0.1:PORT] [--delay 20ms|5ms-80ms]
//
// calibrate times a fixed piece of signature-checking work and prints
// {"unit_us": N}: on a shared machine, runs made minutes apart can be
// compared through it.
//
// null serves a milter that speaks the protocol as authmilter does (its
// server, negotiation and reply) and does nothing else: measured like any
// milter, it gives the cost of the protocol, the system calls and the Go
// runtime per message on the machine, the floor under authmilter's figures.
//
// dns serves a zone file on a loopback address with a delay per query
// (fixed or a uniform range) and counts the queries by type and name: the
// DNS of a benchmark with real round trips, shared by every milter
// measured (see dns.go).
//
// A corpus is a directory of NAME.eml files, each with a NAME.env sidecar
// holding its envelope as JSON: {"client_ip", "helo", "mail_from",
// "rcpts", and optionally "class"}; cmd/benchmail writes one. Runs are
// always bounded (-d, default 10s, caps every run) and only loopback
// addresses or Unix sockets are accepted as targets.
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
	"regexp"
	"strconv"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "calibrate":
		err = calibrateMain(os.Args[2:], os.Stdout)
	case len(os.Args) > 1 && os.Args[1] == "null":
		err = nullMain(ctx, os.Args[2:], os.Stderr)
	case len(os.Args) > 1 && os.Args[1] == "dns":
		err = dnsMain(ctx, os.Args[2:], os.Stdout, os.Stderr)
	default:
		err = loadMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "milterload:", err)
		}
		os.Exit(2)
	}
}

// Limits that keep every run bounded.
const (
	maxDuration    = time.Hour
	maxConcurrency = 1024
	maxGap         = 10 * time.Second
)

func loadMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("milterload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: milterload [flags] CORPUS-DIR\n       milterload calibrate\n       milterload null [--listen SOCKET]\n       milterload dns --zone FILE [--listen ADDR] [--delay D]\n\nflags:")
		fs.PrintDefaults()
	}
	target := fs.String("milter", "inet:127.0.0.1:8895", "milter socket: inet:HOST:PORT, inet:[::1]:PORT, inet:PORT@HOST or unix:PATH (loopback and unix only)")
	conc := fs.Int("c", 1, "concurrent sessions")
	count := fs.Int("n", 0, "messages to send (0: as many as fit in -d)")
	dur := fs.Duration("d", 10*time.Second, "longest run (caps -n too)")
	reuse := fs.Int("reuse", 1, "messages per milter connection (1: one connection per message, as Postfix with one message per SMTP session); later messages of a connection keep the first one's client address and HELO")
	pidList := fs.String("pid", "", "the milter's process id, or a comma-separated list of them (a milter with worker processes): report their summed CPU time per message and memory from /proc")
	match := fs.String("match", "", "only messages whose name matches this regular expression (e.g. '\\.20KB\\.')")
	asJSON := fs.Bool("json", false, "write the report as JSON")
	timeout := fs.Duration("timeout", 30*time.Second, "longest wait for one protocol read or write")
	noReceived := fs.Bool("no-received", false, "do not send the Received field Postfix adds at the top of the header")
	mta := fs.String("mta-name", "mx.inbound.example", "the MTA's host name ({j} and its Received field)")
	warmup := fs.Int("warmup", 0, "messages sent (one session) before measuring, to fill the milter's caches")
	cpuProfile := fs.String("cpuprofile", "", "write milterload's own CPU profile of the measured run (after warm-up) to this file")
	memProfile := fs.String("memprofile", "", "write milterload's own allocation profile (alloc_space, alloc_objects) at the end of the run to this file")
	gap := fs.Duration("gap", 0, "pause between the envelope (connect, HELO, MAIL, RCPT, DATA) and the content (header, body and end of message, written at once as Postfix's cleanup does after the final dot): the client's transfer time, e.g. 60ms")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("want one corpus directory")
	}
	switch {
	case *conc < 1 || *conc > maxConcurrency:
		return fmt.Errorf("-c %d: want 1 to %d", *conc, maxConcurrency)
	case *dur <= 0 || *dur > maxDuration:
		return fmt.Errorf("-d %v: want more than 0 and at most %v", *dur, maxDuration)
	case *count < 0:
		return fmt.Errorf("-n %d: want 0 or more", *count)
	case *reuse < 1:
		return fmt.Errorf("--reuse %d: want 1 or more", *reuse)
	case *warmup < 0 || *warmup > 100000:
		return fmt.Errorf("--warmup %d: want 0 to 100000", *warmup)
	case *gap < 0 || *gap > maxGap:
		return fmt.Errorf("--gap %v: want 0 to %v", *gap, maxGap)
	}
	pids, err := parsePIDs(*pidList)
	if err != nil {
		return err
	}
	network, addr, err := parseTarget(ctx, *target)
	if err != nil {
		return err
	}
	var re *regexp.Regexp
	if *match != "" {
		if re, err = regexp.Compile(*match); err != nil {
			return fmt.Errorf("--match: %w", err)
		}
	}
	corpus, err := loadCorpus(fs.Arg(0), re)
	if err != nil {
		return err
	}
	cfg := runConfig{
		network: network, addr: addr, concurrency: *conc, count: *count, duration: *dur,
		reuse: *reuse, timeout: *timeout, received: !*noReceived, mta: *mta, gap: *gap,
	}
	if *warmup > 0 {
		wc := cfg
		wc.concurrency, wc.count = 1, *warmup
		if s, _ := run(ctx, wc, corpus); summarize(s, 0).Errors > 0 {
			return fmt.Errorf("warm-up: %s", summarize(s, 0).FirstError)
		}
	}
	stopProfiles, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		return err
	}
	rep, err := measure(ctx, cfg, corpus, pids)
	if perr := stopProfiles(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	rep.Target = *target
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.writeText(stdout)
	return nil
}

// measure runs the load and, with pids, reads the milter's /proc figures
// around it, summed over its processes.
func measure(ctx context.Context, cfg runConfig, corpus []*mail, pids []int) (*Report, error) {
	var before procSnapshot
	if len(pids) > 0 {
		var err error
		if before, err = readProcs(pids); err != nil {
			return nil, err
		}
	}
	cpu0 := selfCPU()
	samples, wall := run(ctx, cfg, corpus)
	cpu := selfCPU() - cpu0
	rep := summarize(samples, wall)
	rep.Concurrency, rep.Reuse, rep.CorpusSize = cfg.concurrency, cfg.reuse, len(corpus)
	rep.GapMS = ms(cfg.gap)
	done := rep.Messages - rep.Errors
	if done > 0 {
		rep.ClientCPUPerMsg = ms(cpu) / float64(done)
	}
	if len(pids) > 0 {
		after, err := readProcs(pids)
		if err != nil {
			return nil, fmt.Errorf("after the run: %w", err)
		}
		hz := clockTicks()
		m := &MilterReport{
			PID: pids[0], ClockTicks: hz,
			CPUms:        float64(after.ticks-before.ticks) * 1000 / float64(hz),
			CPUTickError: 1000 / float64(hz) * float64(len(pids)),
			RSSBeforeKB:  before.rssKB, RSSAfterKB: after.rssKB, RSSPeakKB: after.peakKB,
		}
		if len(pids) > 1 {
			m.PIDs = pids
		}
		if done > 0 {
			m.CPUmsPerMsg = m.CPUms / float64(done)
		}
		rep.Milter = m
	}
	return rep, nil
}

// parsePIDs parses --pid: empty, one process id or a comma-separated list.
func parsePIDs(s string) ([]int, error) {
	var pids []int
	seen := map[int]bool{}
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--pid %q: want process ids (positive integers) separated by commas", s)
		}
		if !seen[n] {
			seen[n] = true
			pids = append(pids, n)
		}
	}
	if s != "" && len(pids) == 0 {
		return nil, fmt.Errorf("--pid %q: no process id", s)
	}
	return pids, nil
}

// splitList splits a comma-separated flag value.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
