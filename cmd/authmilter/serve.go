package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"reflect"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/engine"
	"github.com/authmilter/authmilter/internal/dkimkey"
	"github.com/authmilter/authmilter/internal/metrics"
	"github.com/authmilter/authmilter/milter"
)

// shutdownGrace bounds how long SIGTERM waits for messages in flight.
const shutdownGrace = 30 * time.Second

// The garbage collector's settings of the daemon, unless GOGC or GOMEMLIMIT
// is in its environment. Every message leaves short-lived garbage over a
// small live heap, so under Go's default (GOGC=100, a 4 MB minimum heap
// goal) the collector runs often; gcPercent 400 lets the heap grow to five
// times the live heap (at least 16 MB) between collections, trading memory
// for collector CPU (docs/performance.md gives the measured effect). The
// soft memory limit keeps that factor from multiplying a large live heap
// (many sessions with big headers): near the limit the collector runs as
// often as it must.
const (
	gcPercent   = 400
	memoryLimit = 256 << 20
)

// tuneGC applies gcPercent and memoryLimit, each unless getenv says the
// operator chose a value (GOGC, GOMEMLIMIT), and returns what it set.
func tuneGC(getenv func(string) string) (setPercent, setLimit bool) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
		setPercent = true
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
		setLimit = true
	}
	return setPercent, setLimit
}

// runServe implements `authmilter serve`.
func runServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: the embedded defaults)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))}
	}
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return serve(ctx, *path, stderr, hup, nil)
}

// daemon is a running milter: its current configuration and engine, which
// SIGHUP replaces atomically.
type daemon struct {
	path    string
	logOut  io.Writer
	level   *slog.LevelVar
	logger  atomic.Pointer[slog.Logger]
	metrics *engine.Metrics
	// sealers gathers ARC sealer evidence across reloads; sealerFile is
	// where it is kept ("" for nowhere).
	sealers    *engine.SealerStats
	sealerFile string

	mu       sync.Mutex // serialises reloads
	cfg      *Config
	resolver dnscache.Resolver
	keys     *dkimkey.Cache // parsed DKIM keys, kept across reloads (keyed by record text)
	engine   atomic.Pointer[engine.Engine]
	reports  *reports // nil when reports.enabled is false
}

// serve runs the daemon until ctx ends, reloading on every value from hup.
// ready, when not nil, receives the listening address once accepting.
func serve(ctx context.Context, path string, logOut io.Writer, hup <-chan os.Signal, ready func(net.Addr)) error {
	cfg := DefaultConfig()
	if path != "" {
		var err error
		if cfg, err = LoadConfig(path); err != nil {
			return err
		}
	}
	d := &daemon{path: path, logOut: logOut, level: new(slog.LevelVar)}
	d.setLogger(cfg)
	// Libraries that write to the standard logger: route it into ours.
	log.SetFlags(0)
	log.SetOutput(libLog{d})
	reg := metrics.NewRegistry()
	d.metrics = engine.NewMetrics(reg)
	d.startSealers(cfg, reg)
	if err := d.apply(cfg); err != nil {
		return err
	}
	sealersCtx, stopSealers := context.WithCancel(context.Background())
	sealersDone := make(chan struct{})
	go func() { defer close(sealersDone); d.keepSealers(sealersCtx, sealerInterval) }()
	defer func() {
		stopSealers()
		<-sealersDone // writes the file one last time
	}()
	var err error
	if d.reports, err = startReports(cfg, d.resolver, d.logger.Load(), reg); err != nil {
		return err
	}
	if d.reports != nil {
		// Recording stops after the last message in flight (below).
		defer d.reports.Stop()
		if err := d.apply(cfg); err != nil { // the engine gets the hook
			return err
		}
	}
	registerDNSMetrics(reg, func() dnscache.Resolver {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.resolver
	})

	network, address, err := milter.ParseListen(cfg.Listen)
	if err != nil {
		return err
	}
	ln, err := milter.Listen(cfg.Listen)
	if err != nil {
		return err
	}
	logger := d.logger.Load()
	srv := &milter.Server{
		NewSession: (&engine.Handler{Engine: d.engine.Load}).NewSession,
		Logger:     logger,
		// Beyond Postfix's milter_*_timeout: the MTA gives up first.
		IdleTimeout: cfg.Limits.IdleTimeout,
		Actions:     engine.Actions,
		Protocol:    engine.Protocol,
		SymList:     engine.SymList,
	}
	var metricsSrv *http.Server
	if cfg.Metrics.Listen != "" {
		mln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics.listen %s: %w", cfg.Metrics.Listen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", reg.Handler())
		if cfg.Metrics.Pprof {
			// Only on this listener (loopback: validate checks), never on
			// http.DefaultServeMux.
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = metricsSrv.Serve(mln) }()
		logger.Info("metrics listening", "addr", mln.Addr().String(), "pprof", cfg.Metrics.Pprof)
	}
	threads := setThreads(cfg)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("authmilter listening", "listen", cfg.Listen, "authserv_id", cfg.AuthservID,
		"config", configName(path), "sealing", cfg.ARC.Seal.KeyFile != "", "threads", threads)
	if ready != nil {
		ready(ln.Addr())
	}
	for {
		select {
		case <-hup:
			d.reload()
		case err := <-served:
			return fmt.Errorf("milter server stopped: %w", err)
		case <-ctx.Done():
			d.logger.Load().Info("shutting down: finishing messages in flight", "grace", shutdownGrace)
			sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			err := srv.Shutdown(sctx)
			cancel()
			if metricsSrv != nil {
				_ = metricsSrv.Close()
			}
			if network == "unix" {
				_ = os.Remove(address)
			}
			if err != nil {
				d.logger.Load().Warn("shutdown grace period over; remaining sessions closed", "err", err)
			}
			d.logger.Load().Info("stopped")
			return nil
		}
	}
}

// libLog turns the standard logger's lines into warnings.
type libLog struct{ d *daemon }

func (l libLog) Write(p []byte) (int, error) {
	l.d.logger.Load().Warn("library message", "source", "log", "detail", strings.TrimSpace(string(p)))
	return len(p), nil
}

func configName(path string) string {
	if path == "" {
		return "(embedded defaults)"
	}
	return path
}

func (d *daemon) setLogger(cfg *Config) {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(cfg.Log.Level))
	d.level.Set(lv)
	opts := &slog.HandlerOptions{Level: d.level}
	var h slog.Handler = slog.NewTextHandler(d.logOut, opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(d.logOut, opts)
	}
	d.logger.Store(slog.New(h))
}

// apply builds the engine of cfg and makes it current. The resolver (and
// its cache) is kept when the dns section did not change.
func (d *daemon) apply(cfg *Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.resolver
	if r == nil || !reflect.DeepEqual(d.cfg.DNS, cfg.DNS) {
		var err error
		if r, err = dnscache.New(dnsConfig(cfg)); err != nil {
			return fmt.Errorf("dns: %w", err)
		}
	}
	e, err := newEngine(cfg, r, d.logger.Load(), d.metrics)
	if err != nil {
		return err
	}
	if d.keys == nil {
		d.keys = dkimkey.NewCache(0)
	}
	e.Keys = d.keys
	e.Sealers = d.sealers
	if d.reports != nil {
		e.Reports = &engine.Reporting{Record: d.reports.Record, EnvelopeTo: cfg.Reports.EnvelopeTo}
	}
	d.cfg, d.resolver = cfg, r
	d.engine.Store(e)
	return nil
}

// reload re-reads the configuration file. A file that does not load leaves
// the running configuration in place.
func (d *daemon) reload() {
	log := d.logger.Load()
	// SIGHUP also writes the queued report records (rotation, backups).
	fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := d.reports.Flush(fctx); err != nil {
		log.Warn("SIGHUP: dmarc report records not written", "err", err)
	}
	cancel()
	if d.path == "" {
		log.Info("SIGHUP: no configuration file; nothing to reload")
		return
	}
	cfg, err := LoadConfig(d.path)
	if err == nil {
		d.mu.Lock()
		old := d.cfg
		d.mu.Unlock()
		if cfg.Listen != old.Listen || cfg.Metrics.Listen != old.Metrics.Listen {
			log.Warn("SIGHUP: listen addresses change only on restart", "listen", old.Listen, "metrics", old.Metrics.Listen)
		}
		if !reflect.DeepEqual(cfg.Reports, old.Reports) {
			log.Warn("SIGHUP: the reports section changes only on restart")
			cfg.Reports = old.Reports // what runs
		}
		if cfg.Threads != old.Threads {
			log.Warn("SIGHUP: threads changes only on restart", "threads", old.Threads)
			cfg.Threads = old.Threads // what runs
		}
		d.setLogger(cfg)
		err = d.apply(cfg)
	}
	if err != nil {
		d.logger.Load().Error("SIGHUP: configuration not reloaded; keeping the running one", "config", d.path, "err", err)
		return
	}
	d.logger.Load().Info("configuration reloaded", "config", d.path)
}

// registerDNSMetrics exports the resolver cache's counters.
func registerDNSMetrics(reg *metrics.Registry, current func() dnscache.Resolver) {
	stats := func() dnscache.Stats {
		if s, ok := current().(interface{ Stats() dnscache.Stats }); ok {
			return s.Stats()
		}
		return dnscache.Stats{}
	}
	reg.NewCounterFunc("authmilter_dns_cache_hits_total", "DNS lookups answered from the cache.", func() float64 { return float64(stats().Hits) })
	reg.NewCounterFunc("authmilter_dns_cache_misses_total", "DNS lookups that waited for an upstream query.", func() float64 { return float64(stats().Misses) })
	reg.NewCounterFunc("authmilter_dns_queries_total", "Upstream DNS queries.", func() float64 { return float64(stats().Queries) })
	reg.NewCounterFunc("authmilter_dns_errors_total", "Upstream DNS queries that failed temporarily.", func() float64 { return float64(stats().Errors) })
	reg.NewGaugeFunc("authmilter_dns_cache_entries", "Answers held in the DNS cache.", func() float64 { return float64(stats().Entries) })
}

// setThreads applies the threads setting and says what it is: the
// GOMAXPROCS environment variable when set, else a fixed count, else
// "auto", the Go runtime's own choice (left alone).
func setThreads(cfg *Config) string {
	if env := os.Getenv("GOMAXPROCS"); env != "" {
		return "GOMAXPROCS=" + env
	}
	if n, _ := cfg.threads(); n > 0 {
		runtime.GOMAXPROCS(n)
		return strconv.Itoa(n)
	}
	return "auto"
}
