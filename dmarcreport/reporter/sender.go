package reporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/authmilter/authmilter/dmarcreport"
	"github.com/authmilter/authmilter/dmarcreport/store"
	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/verify/dmarc"
)

// SenderOptions configure a Sender. Zero values mean the defaults.
type SenderOptions struct {
	Meta dmarcreport.Meta
	// Receiver is the reporting domain in the filename and Subject
	// (default: the domain of Meta.Email).
	Receiver string
	SMTP     SMTPOptions
	// MaxRecipients is how many rua destinations a report goes to at most
	// (default 2).
	MaxRecipients int
	// MaxRecords splits a period's rows into reports of at most this many
	// records each (0: no limit). Each part is a report of its own with
	// its own Report-ID and filename unique-id (RFC 9990 §2.5.2).
	MaxRecords int
	// ExcludeDomains are policy domains never reported to.
	ExcludeDomains []string
	// Resolver verifies external destinations (RFC 9990 §3).
	Resolver dnscache.Resolver
	// Owner names this host in claims (default: Receiver and the time).
	Owner string
	// ClaimFor is how long a claim to send one report lasts (default
	// 10m); a sender that crashes holds the report this long.
	ClaimFor time.Duration
	// Grace is how long after a period ends its report waits, for the
	// last batches of every host to reach the store (default 1m, capped
	// at a tenth of Interval).
	Grace time.Duration
	// Interval is the period length, for Grace's cap (default 24h).
	Interval time.Duration
	// Retries is how many attempts a report gets before it is given up
	// (default 5), Backoff the wait after the first failure, doubled
	// after each (default 10m).
	Retries int
	Backoff time.Duration
	// Retention deletes periods that ended longer ago than this (default
	// 30 days; negative: never).
	Retention time.Duration
	Logger    *slog.Logger
	Now       func() time.Time
}

// Sender sends the reports of closed periods.
type Sender struct {
	st *store.Store
	o  SenderOptions

	sent, failed atomic.Uint64
}

// NewSender returns a Sender for the reports in st.
func NewSender(st *store.Store, o SenderOptions) (*Sender, error) {
	if o.Meta.OrgName == "" || o.Meta.Email == "" {
		return nil, errors.New("reports: org_name and email are required to send reports")
	}
	if o.Receiver == "" {
		at := strings.LastIndexByte(o.Meta.Email, '@')
		if at < 0 {
			return nil, fmt.Errorf("reports: email %q has no domain", o.Meta.Email)
		}
		o.Receiver = strings.ToLower(o.Meta.Email[at+1:])
	}
	if o.MaxRecipients <= 0 {
		o.MaxRecipients = 2
	}
	if o.Interval <= 0 {
		o.Interval = 24 * time.Hour
	}
	if o.Grace <= 0 {
		o.Grace = time.Minute
	}
	o.Grace = min(o.Grace, o.Interval/10)
	if o.ClaimFor <= 0 {
		o.ClaimFor = 10 * time.Minute
	}
	if o.Retries <= 0 {
		o.Retries = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 10 * time.Minute
	}
	if o.Retention == 0 {
		o.Retention = 30 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Owner == "" {
		o.Owner = fmt.Sprintf("%s/%d", o.Receiver, time.Now().UnixNano())
	}
	if o.Resolver == nil {
		return nil, errors.New("reports: a resolver is required to verify destinations")
	}
	return &Sender{st: st, o: o}, nil
}

// Sent and Failed count the reports sent and the failed attempts.
func (s *Sender) Sent() uint64   { return s.sent.Load() }
func (s *Sender) Failed() uint64 { return s.failed.Load() }

// Pending returns how many closed periods wait to be sent.
func (s *Sender) Pending(ctx context.Context) (int, error) {
	ps, err := s.st.Periods(ctx, store.Filter{ClosedBefore: s.o.Now().Add(-s.o.Grace)})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range ps {
		if p.State == store.StatePending {
			n++
		}
	}
	return n, nil
}

// Summary is what one SendDue did.
type Summary struct {
	Sent, Failed, Skipped int
}

// SendDue sends every closed period's report that is due and not claimed
// by another host, then prunes old periods.
func (s *Sender) SendDue(ctx context.Context) (Summary, error) {
	var sum Summary
	now := s.o.Now()
	ps, err := s.st.Periods(ctx, store.Filter{ClosedBefore: now.Add(-s.o.Grace)})
	if err != nil {
		return sum, err
	}
	for _, p := range ps {
		if p.State != store.StatePending || p.NextTry.After(now) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		ok, err := s.st.Claim(ctx, p.Begin, p.Domain, s.o.Owner, now, now.Add(s.o.ClaimFor))
		if err != nil {
			return sum, err
		}
		if !ok {
			continue // another host has it, or has sent it
		}
		switch err := s.sendOne(ctx, p); {
		case err == nil:
			sum.Sent++
		case errors.Is(err, errSkip):
			sum.Skipped++
		default:
			sum.Failed++
		}
	}
	if s.o.Retention > 0 {
		if n, err := s.st.Prune(ctx, now.Add(-s.o.Retention)); err != nil {
			return sum, err
		} else if n > 0 {
			s.o.Logger.Info("dmarc reports: pruned old periods", slog.Int64("periods", n))
		}
	}
	return sum, nil
}

var errSkip = errors.New("skipped")

// sendOne sends one claimed period's report and records the outcome.
func (s *Sender) sendOne(ctx context.Context, p store.Period) error {
	log := s.o.Logger.With(slog.String("domain", p.Domain), slog.Time("period", p.Begin))
	giveUp := func(why string, err error) error {
		log.Warn("dmarc reports: not sending "+why, slog.Any("error", err))
		if mErr := s.st.MarkFailed(ctx, p.Begin, p.Domain, s.o.Owner, s.o.Now(), true); mErr != nil {
			return mErr
		}
		return fmt.Errorf("%w: %w", errSkip, err)
	}
	for _, ex := range s.o.ExcludeDomains {
		if strings.EqualFold(strings.TrimSuffix(ex, "."), p.Domain) {
			return giveUp("to an excluded domain (reports.exclude_domains)", errors.New(p.Domain+" is excluded"))
		}
	}
	pol, rows, err := s.st.Report(ctx, p.Begin, p.Domain)
	if err != nil {
		return s.retry(ctx, p, log, err)
	}
	if len(rows) == 0 {
		return giveUp("an empty report", errors.New("no rows"))
	}
	var finder dmarc.OrgDomainFinder = dmarc.TreeWalk{}
	if pol.Discovery == "psl" {
		finder = dmarc.PSL{}
	}
	to, skipped, err := destinations(ctx, s.o.Resolver, finder, pol.Domain, pol.RUA, s.o.MaxRecipients)
	for _, why := range skipped {
		log.Info("dmarc reports: destination skipped", slog.String("why", why))
	}
	if err != nil {
		return s.retry(ctx, p, log, err)
	}
	if len(to) == 0 {
		return giveUp("without an authorized mailto: destination", fmt.Errorf("rua %v", pol.RUA))
	}
	reports := s.Build(p, pol, rows)
	for i, r := range reports {
		msg, err := r.Message(dmarcreport.MessageOptions{Receiver: s.o.Receiver, To: to, Date: s.o.Now(), Part: i + 1, Parts: len(reports)})
		if err != nil {
			return giveUp("a report that cannot be built", err)
		}
		refused, err := s.o.SMTP.deliver(ctx, to, msg)
		for rcpt, rerr := range refused {
			log.Warn("dmarc reports: recipient refused", slog.String("to", rcpt), slog.Any("error", rerr))
		}
		if err != nil {
			return s.retry(ctx, p, log, err)
		}
	}
	if err := s.st.MarkSent(ctx, p.Begin, p.Domain, s.o.Owner, s.o.Now()); err != nil {
		return err
	}
	s.sent.Add(1)
	log.Info("dmarc reports: sent", slog.String("report_id", reports[0].ReportID), slog.Int("parts", len(reports)),
		slog.String("to", strings.Join(to, ",")), slog.Int64("messages", p.Messages))
	return nil
}

// retry records a failed attempt: tried again after a backoff that
// doubles with each attempt, given up after Retries attempts.
func (s *Sender) retry(ctx context.Context, p store.Period, log *slog.Logger, err error) error {
	s.failed.Add(1)
	attempt := p.Attempts + 1
	giveUp := attempt >= s.o.Retries
	next := s.o.Now().Add(s.o.Backoff << min(attempt-1, 20))
	if giveUp {
		log.Error("dmarc reports: giving up on the report", slog.Int("attempts", attempt), slog.Any("error", err))
	} else {
		log.Warn("dmarc reports: sending failed; will retry", slog.Int("attempt", attempt), slog.Time("next", next), slog.Any("error", err))
	}
	if mErr := s.st.MarkFailed(ctx, p.Begin, p.Domain, s.o.Owner, next, giveUp); mErr != nil {
		return errors.Join(err, mErr)
	}
	return err
}

// Build returns the reports of one period, as BuildReports does with the
// sender's options.
func (s *Sender) Build(p store.Period, pol dmarcreport.Policy, rows []dmarcreport.CountedRow) []*dmarcreport.Report {
	return BuildReports(s.o.Meta, s.o.Receiver, s.o.MaxRecords, p.Domain, p.Begin, p.End, pol, rows)
}

// BuildReports returns the reports of one period: one, or maxRecords rows
// each (0: no limit). The Report-IDs depend only on the period, the
// domain, the part and the receiver, so a report built again is the same
// report (RFC 9990 §2.5.4 "Handling of Duplicates").
func BuildReports(meta dmarcreport.Meta, receiver string, maxRecords int, domain string, begin, end time.Time, pol dmarcreport.Policy, rows []dmarcreport.CountedRow) []*dmarcreport.Report {
	chunk := max(len(rows), 1)
	if maxRecords > 0 && chunk > maxRecords {
		chunk = maxRecords
	}
	parts := max((len(rows)+chunk-1)/chunk, 1)
	var out []*dmarcreport.Report
	for i := range parts {
		part := rows[min(i*chunk, len(rows)):min((i+1)*chunk, len(rows))]
		out = append(out, &dmarcreport.Report{
			Meta:     meta,
			ReportID: dmarcreport.ReportID(domain, begin, i+1, parts, receiver),
			Begin:    begin, End: end,
			Policy: pol,
			Rows:   part,
		})
	}
	return out
}

// Run sends due reports every every until ctx ends.
func (s *Sender) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if sum, err := s.SendDue(ctx); err != nil && ctx.Err() == nil {
			s.o.Logger.Error("dmarc reports: sending", slog.Any("error", err))
		} else if sum.Sent+sum.Failed > 0 {
			s.o.Logger.Info("dmarc reports: send run", slog.Int("sent", sum.Sent), slog.Int("failed", sum.Failed), slog.Int("skipped", sum.Skipped))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
