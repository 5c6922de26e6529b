package engine

import (
	"log/slog"
	"strings"

	"github.com/authmilter/authmilter/internal/metrics"
	"github.com/authmilter/authmilter/verify/dmarc"
)

// Metrics are the milter's Prometheus metrics.
type Metrics struct {
	Messages *metrics.CounterVec // by action and DMARC result
	Results  *metrics.CounterVec // by method and result
	Latency  *metrics.Histogram  // seconds from MAIL FROM to verdict
	Errors   *metrics.CounterVec // by kind
	// DNS counts DMARC lookups by kind: "speculative" (queries started at
	// MAIL FROM for what the envelope predicts) and "walk_skipped" (tree
	// walks from identifiers that could not align, not made).
	DNS *metrics.CounterVec
}

// NewMetrics registers the milter's metrics in reg.
func NewMetrics(reg *metrics.Registry) *Metrics {
	return &Metrics{
		Messages: reg.NewCounterVec("authmilter_messages_total", "Messages judged, by action and DMARC result.", "action", "dmarc"),
		Results:  reg.NewCounterVec("authmilter_results_total", "Authentication results, by method and result.", "method", "result"),
		Latency: reg.NewHistogram("authmilter_message_seconds", "Time from MAIL FROM to the verdict.",
			[]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
		Errors: reg.NewCounterVec("authmilter_errors_total", "Errors, by kind.", "kind"),
		DNS: reg.NewCounterVec("authmilter_dmarc_lookups_total",
			"DMARC lookups by kind: speculative (queries started at MAIL FROM), walk_skipped (identifier tree walks not made: they could not align).", "kind"),
	}
}

// finish writes the message's log line and counts it.
func (m *Evaluation) finish(v *Verdict) {
	if mt := m.e.Metrics; mt != nil {
		dres := "none"
		if v.DMARC != nil {
			dres = string(v.DMARC.Status)
		}
		if v.Internal {
			dres = "internal"
		}
		mt.Messages.Inc(string(v.Action), dres)
		mt.Latency.Observe(v.Elapsed.Seconds())
		if v.SPF != nil {
			mt.Results.Inc("spf", string(v.SPF.Status))
		}
		if v.IPRev != nil {
			mt.Results.Inc("iprev", string(v.IPRev.Status))
		}
		for _, s := range v.DKIM {
			mt.Results.Inc("dkim", string(s.Status))
		}
		if v.DMARC != nil {
			mt.Results.Inc("dmarc", string(v.DMARC.Status))
		}
		if v.ARC != nil {
			mt.Results.Inc("arc", string(v.ARC.Status))
		}
		if v.SealErr != nil {
			mt.Errors.Inc("seal")
		}
		if v.SignErr != nil {
			mt.Errors.Inc("dkim_sign")
		}
		if v.LimitErr != nil {
			mt.Errors.Inc("header_limit")
		}
		if mt.DNS != nil {
			if v.Speculative > 0 {
				mt.DNS.WithLabelValues("speculative").Add(float64(v.Speculative))
			}
			if v.DMARC != nil && v.DMARC.SkippedWalks > 0 {
				mt.DNS.WithLabelValues("walk_skipped").Add(float64(v.DMARC.SkippedWalks))
			}
		}
	}
	level := slog.LevelInfo
	if v.SealErr != nil || v.LimitErr != nil || v.SignErr != nil {
		level = slog.LevelWarn
	}
	// The line is built only when it will be written (log.level: warn
	// keeps only the messages that had a problem).
	if !m.e.logger().Enabled(m.ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("queue_id", m.env.QueueID),
		slog.String("client_ip", addrString(m.env)),
		slog.String("helo", m.env.HELO),
		slog.String("mail_from", m.env.MailFrom),
	}
	if v.Internal {
		attrs = append(attrs, slog.Bool("internal", true))
	}
	if r := v.IPRev; r != nil {
		attrs = append(attrs, slog.String("iprev", string(r.Status)))
		if r.Name != "" {
			attrs = append(attrs, slog.String("iprev_name", r.Name))
		}
		if r.Err != nil {
			attrs = append(attrs, slog.String("iprev_reason", r.Err.Error()))
		}
	}
	if v.SPF != nil {
		attrs = append(attrs, slog.String("spf", string(v.SPF.Status)))
		if v.SPF.Err != nil {
			attrs = append(attrs, slog.String("spf_reason", v.SPF.Err.Error()))
		}
	}
	if v.HELO != nil {
		attrs = append(attrs, slog.String("spf_helo", string(v.HELO.Status)))
		if v.HELO.Err != nil {
			attrs = append(attrs, slog.String("spf_helo_reason", v.HELO.Err.Error()))
		}
	}
	if len(v.DKIM) > 0 {
		parts := make([]string, 0, len(v.DKIM))
		for _, s := range v.DKIM {
			p := s.Domain + ":" + string(s.Status)
			if s.Reason != "" && s.Status != "pass" {
				p += "(" + s.Reason + ")"
			}
			parts = append(parts, p)
		}
		attrs = append(attrs, slog.String("dkim", strings.Join(parts, " ")))
	}
	if d := v.DMARC; d != nil {
		attrs = append(attrs, slog.String("from_domain", d.AuthorDomain), slog.String("dmarc", string(d.Status)))
		if d.Policy != "" {
			attrs = append(attrs, slog.String("dmarc_policy", string(d.Policy)))
		}
		if d.Status == "fail" {
			attrs = append(attrs, slog.String("dmarc_disposition", string(d.Disposition)))
		}
		if d.Reason != "" && d.Status != "pass" {
			attrs = append(attrs, slog.String("dmarc_reason", d.Reason))
		}
		if d.SkippedWalks > 0 {
			// Identifiers outside the Author Domain's Organizational
			// Domain: not looked up, they could not align (issue #17).
			attrs = append(attrs, slog.Int("dmarc_walks_skipped", d.SkippedWalks))
		}
	}
	if a := v.ARC; a != nil && (a.Status != "none" || a.Instances > 0) {
		attrs = append(attrs, slog.String("arc", string(a.Status)), slog.Int("arc_instances", a.Instances))
		if a.Reason != "" && a.Status != "pass" {
			attrs = append(attrs, slog.String("arc_reason", a.Reason))
		}
	}
	if !v.Override.IsZero() {
		attrs = append(attrs, slog.String("override", v.Override.String()))
	}
	if len(v.RemoveAR) > 0 {
		attrs = append(attrs, slog.Int("forged_ar_removed", len(v.RemoveAR)))
	}
	if v.Sealed {
		attrs = append(attrs, slog.Bool("sealed", true))
	}
	if v.SealErr != nil {
		attrs = append(attrs, slog.String("seal_error", v.SealErr.Error()))
	}
	if len(v.Signed) > 0 {
		parts := make([]string, len(v.Signed))
		for i, s := range v.Signed {
			parts[i] = s.Domain + ":" + s.Selector + ":" + s.Algorithm
		}
		attrs = append(attrs, slog.String("dkim_signed", strings.Join(parts, " ")))
	}
	if v.SignSkipped != "" {
		attrs = append(attrs, slog.String("dkim_not_signed", v.SignSkipped))
	}
	if v.SignErr != nil {
		attrs = append(attrs, slog.String("dkim_sign_error", v.SignErr.Error()))
	}
	if v.LimitErr != nil {
		attrs = append(attrs, slog.String("limit", v.LimitErr.Error()))
	}
	if v.Speculative > 0 {
		attrs = append(attrs, slog.Int("dns_speculative", v.Speculative))
	}
	attrs = append(attrs, slog.String("action", string(v.Action)))
	if v.Reply != "" {
		attrs = append(attrs, slog.String("reply", v.Reply))
	}
	attrs = append(attrs, slog.Duration("elapsed", v.Elapsed))
	m.e.logger().LogAttrs(m.ctx, level, "message", attrs...)
}

func addrString(env Envelope) string {
	if env.ClientIP.IsValid() {
		return env.ClientIP.Unmap().String()
	}
	return ""
}

// dispositionWord is the DMARC disposition for text output.
func dispositionWord(d *dmarc.Result) string {
	if d == nil || d.Disposition == "" {
		return "none"
	}
	return string(d.Disposition)
}
