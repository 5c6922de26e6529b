package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authmilter/authmilter/dmarcreport"
	"github.com/authmilter/authmilter/dmarcreport/reporter"
	"github.com/authmilter/authmilter/dmarcreport/store"
	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/internal/metrics"
)

// generator names this binary in reports (RFC 9990 "generator"): the
// version `authmilter version` prints.
func generator() string {
	info, _ := debug.ReadBuildInfo()
	v := readVersion(version, commit, modified, info).Version
	if v == "" {
		v = "(devel)"
	}
	return "authmilter " + v
}

// openReportStore opens the configured store. mustExist refuses to create
// an SQLite file (report show on a host that never recorded).
func openReportStore(ctx context.Context, cfg *Config, mustExist bool) (*store.Store, error) {
	if path, ok := strings.CutPrefix(cfg.Reports.Store, "sqlite:"); ok && mustExist {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("reports.store %s: %w (is reports.enabled set on this host?)", cfg.Reports.Store, err)
		}
	}
	st, err := store.Open(ctx, cfg.Reports.Store)
	if err != nil {
		return nil, fmt.Errorf("reports.store: %w", err)
	}
	return st, nil
}

// reportMeta is the report metadata of the configuration.
func reportMeta(cfg *Config) dmarcreport.Meta {
	return dmarcreport.Meta{
		OrgName:          cfg.Reports.OrgName,
		Email:            cfg.Reports.Email,
		ExtraContactInfo: cfg.Reports.ExtraContactInfo,
		Generator:        generator(),
	}
}

// newReportSender builds the sender of the configuration.
func newReportSender(cfg *Config, st *store.Store, r dnscache.Resolver, logger *slog.Logger) (*reporter.Sender, error) {
	rc := cfg.Reports
	smtp := reporter.SMTPOptions{
		Address:   rc.SMTP.Address,
		HelloName: cfg.AuthservID,
		MailFrom:  rc.SMTP.MailFrom,
		StartTLS:  rc.SMTP.StartTLS,
		Username:  rc.SMTP.Username,
	}
	if rc.SMTP.PasswordFile != "" {
		pw, err := os.ReadFile(rc.SMTP.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("reports.smtp.password_file: %w", err)
		}
		smtp.Password = strings.TrimRight(string(pw), "\r\n")
	}
	return reporter.NewSender(st, reporter.SenderOptions{
		Meta:           reportMeta(cfg),
		SMTP:           smtp,
		MaxRecipients:  rc.MaxRecipients,
		MaxRecords:     rc.MaxRecords,
		ExcludeDomains: rc.ExcludeDomains,
		Resolver:       r,
		Owner:          fmt.Sprintf("%s/%d/%d", cfg.AuthservID, os.Getpid(), time.Now().UnixNano()),
		Interval:       rc.Interval,
		Retention:      rc.Retention,
		Logger:         logger,
	})
}

// reports is the daemon's reporting: the recorder and, with reports.send,
// the sender, running until stop.
type reports struct {
	store    *store.Store
	recorder *reporter.Recorder
	done     chan struct{}
	cancel   context.CancelFunc
}

// startReports opens the store and starts recording (and sending); nil
// when reports are off.
func startReports(cfg *Config, r dnscache.Resolver, logger *slog.Logger, reg *metrics.Registry) (*reports, error) {
	rc := cfg.Reports
	if !rc.Enabled {
		return nil, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
	st, err := openReportStore(octx, cfg, false)
	ocancel()
	if err != nil {
		cancel()
		return nil, err
	}
	rep := &reports{store: st, cancel: cancel, done: make(chan struct{})}
	rep.recorder = reporter.NewRecorder(st, reporter.RecorderOptions{Interval: rc.Interval, QueueSize: rc.QueueSize, Logger: logger})
	rec := rep.recorder
	reg.NewCounterFunc("authmilter_reports_rows_recorded_total", "Judged messages written to the DMARC report store.", func() float64 { return float64(rec.Recorded()) })
	reg.NewCounterFunc("authmilter_reports_rows_dropped_total", "Judged messages not recorded because the report queue was full.", func() float64 { return float64(rec.Dropped()) })
	var sender *reporter.Sender
	if rc.Send {
		if sender, err = newReportSender(cfg, st, r, logger); err != nil {
			cancel()
			st.Close()
			return nil, err
		}
		reg.NewCounterFunc("authmilter_reports_sent_total", "DMARC aggregate reports sent.", func() float64 { return float64(sender.Sent()) })
		reg.NewCounterFunc("authmilter_reports_failed_total", "Failed attempts to send a DMARC aggregate report.", func() float64 { return float64(sender.Failed()) })
		reg.NewGaugeFunc("authmilter_reports_pending", "Closed periods whose DMARC report is not sent yet.", func() float64 {
			pctx, c := context.WithTimeout(context.Background(), 5*time.Second)
			defer c()
			n, _ := sender.Pending(pctx)
			return float64(n)
		})
	}
	go func() {
		defer close(rep.done)
		recDone := make(chan struct{})
		go func() { rec.Run(ctx); close(recDone) }()
		if sender != nil {
			// Often enough that a report leaves soon after its period
			// closes, rarely enough to cost nothing.
			every := min(max(rc.Interval/6, 5*time.Second), 5*time.Minute)
			sender.Run(ctx, every)
		}
		<-recDone
	}()
	logger.Info("dmarc reports: recording", "store", st.String(), "interval", rc.Interval, "send", rc.Send)
	return rep, nil
}

// Flush writes what is queued (SIGHUP).
func (r *reports) Flush(ctx context.Context) error {
	if r == nil {
		return nil
	}
	return r.recorder.Flush(ctx)
}

// Stop writes what is queued, stops sending and closes the store.
func (r *reports) Stop() {
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
	r.store.Close()
}

// Record is the engine's hook.
func (r *reports) Record(rec dmarcreport.Record) { r.recorder.Record(rec) }

// runReport implements `authmilter report show|send`.
func runReport(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("report: want show or send")}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		// The flags of both subcommands (send takes --config only).
		fmt.Fprintln(stderr, "usage: authmilter report show|send [flags]")
		return runReportShow([]string{"-h"}, stdout, stderr)
	case "show":
		return runReportShow(args[1:], stdout, stderr)
	case "send":
		return runReportSend(args[1:], stdout, stderr)
	}
	return usageError{fmt.Errorf("report: unknown subcommand %q (want show or send)", args[0])}
}

func loadConfigOrDefault(path string) (*Config, error) {
	if path == "" {
		return DefaultConfig(), nil
	}
	return LoadConfig(path)
}

// shownPeriod is one period's report as `report show --format json` prints
// it.
type shownPeriod struct {
	Domain   string                   `json:"domain"`
	Begin    time.Time                `json:"begin"`
	End      time.Time                `json:"end"`
	State    store.State              `json:"state"`
	Messages int64                    `json:"messages"`
	Policy   dmarcreport.Policy       `json:"policy_published"`
	Rows     []dmarcreport.CountedRow `json:"rows"`
}

func runReportShow(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: the embedded defaults)")
	domain := fs.String("domain", "", "only this policy domain")
	open := fs.Bool("open", false, "the period still open instead of the closed ones")
	format := fs.String("format", "text", "text, json or xml (exactly what would be sent)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("report show: unexpected argument %q", fs.Arg(0))}
	}
	switch *format {
	case "text", "json", "xml":
	default:
		return usageError{fmt.Errorf("report show: --format %q: want text, json or xml", *format)}
	}
	cfg, err := loadConfigOrDefault(*path)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := openReportStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	f := store.Filter{Domain: *domain, ClosedBefore: now}
	if *open {
		f = store.Filter{Domain: *domain, OpenAt: now}
	}
	periods, err := st.Periods(ctx, f)
	if err != nil {
		return err
	}
	var shown []shownPeriod
	for _, p := range periods {
		pol, rows, err := st.Report(ctx, p.Begin, p.Domain)
		if err != nil {
			return err
		}
		shown = append(shown, shownPeriod{Domain: p.Domain, Begin: p.Begin, End: p.End, State: p.State, Messages: p.Messages, Policy: pol, Rows: rows})
	}
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if shown == nil {
			shown = []shownPeriod{}
		}
		return enc.Encode(shown)
	case "xml":
		meta := reportMeta(cfg)
		if meta.OrgName == "" || meta.Email == "" {
			return errors.New("report show --format xml: set reports.org_name and reports.email (they are part of the report)")
		}
		receiver := meta.Email[strings.LastIndexByte(meta.Email, '@')+1:]
		for i, s := range shown {
			parts := reporter.BuildReports(meta, receiver, cfg.Reports.MaxRecords, s.Domain, s.Begin, s.End, s.Policy, s.Rows)
			for j, r := range parts {
				doc, err := r.XML()
				if err != nil {
					return err
				}
				if i > 0 || j > 0 {
					fmt.Fprintln(stdout)
				}
				stdout.Write(doc)
			}
		}
		return nil
	}
	if len(shown) == 0 {
		fmt.Fprintln(stdout, "no reports")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for i, s := range shown {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "%s\t%s – %s UTC\t%s\t%d messages\tp=%s\n", s.Domain, s.Begin.Format(time.DateTime), s.End.Format(time.DateTime), s.State, s.Messages, s.Policy.P)
		fmt.Fprintln(tw, "  source_ip\tcount\tdisposition\tdkim\tspf\theader_from\treasons")
		for _, r := range s.Rows {
			var reasons []string
			for _, rs := range r.Reasons {
				reasons = append(reasons, string(rs.Type))
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.SourceIP, r.Count, r.Disposition, r.DKIM, r.SPF, r.HeaderFrom, strings.Join(reasons, ","))
		}
	}
	return tw.Flush()
}

func runReportSend(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: the embedded defaults)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("report send: unexpected argument %q", fs.Arg(0))}
	}
	cfg, err := loadConfigOrDefault(*path)
	if err != nil {
		return err
	}
	if cfg.Reports.OrgName == "" || !strings.Contains(cfg.Reports.Email, "@") {
		return errors.New("report send: set reports.org_name and reports.email")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	st, err := openReportStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := dnscache.New(dnsConfig(cfg))
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	s, err := newReportSender(cfg, st, r, logger)
	if err != nil {
		return err
	}
	sum, err := s.SendDue(ctx)
	fmt.Fprintf(stdout, "%d sent, %d failed, %d skipped\n", sum.Sent, sum.Failed, sum.Skipped)
	if err == nil && sum.Failed > 0 {
		err = fmt.Errorf("report send: %d reports failed (they will be retried)", sum.Failed)
	}
	return err
}
