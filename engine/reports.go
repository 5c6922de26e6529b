package engine

import (
	"strings"
	"time"

	"github.com/authmilter/authmilter/dmarcreport"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/dmarc"
	"github.com/authmilter/authmilter/verify/spf"
)

// Reporting hands the facts of judged messages to DMARC aggregate reporting
// (package dmarcreport).
type Reporting struct {
	// Record receives one record per judged message whose From domain has
	// a DMARC Policy Record. It must not block (reporter.Recorder.Record
	// does not).
	Record func(dmarcreport.Record)
	// EnvelopeTo adds the first recipient's domain to the identifiers
	// (envelope_to, RFC 9990 §2.1.1 "identifiers").
	EnvelopeTo bool
}

// report gives the verdict's facts to e.Reports. Messages not judged, those
// without a DMARC policy, without a client address, and those tempfailed
// (the client will retry them, and they would count twice) are not
// reported.
func (m *Evaluation) report(v *Verdict) {
	rp := m.e.Reports
	if rp == nil || rp.Record == nil || v.Internal || v.DMARC == nil || v.DMARC.Record == nil ||
		v.Action == ActionTempfail || !m.env.ClientIP.IsValid() {
		return
	}
	rp.Record(reportRecord(m.env, v, rp.EnvelopeTo, m.start))
}

// reportRecord turns a verdict into an aggregate report record.
func reportRecord(env Envelope, v *Verdict, envelopeTo bool, at time.Time) dmarcreport.Record {
	d := v.DMARC
	rec := d.Record
	p := string(rec.Policy)
	if p == "" {
		p = "none" // RFC 9989 §4.10.1: no valid p but a valid rua
	}
	published := dmarcreport.Policy{
		Domain:    d.PolicyDomain,
		P:         p,
		SP:        string(rec.SubdomainPolicy),
		NP:        string(rec.NonexistentPolicy),
		ADKIM:     string(rec.ADKIM),
		ASPF:      string(rec.ASPF),
		Discovery: d.Discovery,
		FO:        rec.FO,
		Testing:   "n",
		RUA:       rec.RUA,
	}
	if rec.Testing {
		published.Testing = "y"
	}

	row := dmarcreport.Row{
		SourceIP:     env.ClientIP.String(),
		DKIM:         dmarcreport.AlignedFail,
		SPF:          dmarcreport.AlignedFail,
		HeaderFrom:   d.AuthorDomain,
		EnvelopeFrom: domainOf(env.MailFrom),
	}
	if envelopeTo && len(env.Rcpts) > 0 {
		row.EnvelopeTo = domainOf(env.Rcpts[0])
	}
	// RFC 9990 §2.1.1 "policy_evaluated": dkim and spf are the DMARC
	// alignment results, not the raw ones.
	for _, id := range d.Aligned() {
		if id.Method == "dkim" {
			row.DKIM = dmarcreport.AlignedPass
		} else {
			row.SPF = dmarcreport.AlignedPass
		}
	}

	// The disposition applied (ActionDispositionType): pass for a DMARC
	// pass under an enforcing policy, else what was done to the message.
	switch {
	case d.Status == verify.StatusPass && d.Policy != dmarc.PolicyNone && d.Policy != "":
		row.Disposition = dmarcreport.DispositionPass
	case v.Action == ActionReject:
		row.Disposition = dmarcreport.DispositionReject
	case v.Action == ActionQuarantine:
		row.Disposition = dmarcreport.DispositionQuarantine
	default:
		row.Disposition = dmarcreport.DispositionNone
	}
	// RFC 9990 §2.1.6: why the disposition differs from the policy, as
	// the policy decision recorded it (t=y, allow lists, trusted
	// sealers, mailing lists, monitor mode).
	if o := v.Override; !o.IsZero() {
		t, comment := dmarcreport.ReasonType(o.Type), o.Comment
		if !t.Valid() {
			// RFC 7489's sampled_out (pct) has no RFC 9990 type.
			t, comment = dmarcreport.ReasonOther, o.String()
		}
		row.Reasons = append(row.Reasons, dmarcreport.Reason{Type: t, Comment: comment})
	}

	// auth_results: uninterpreted DKIM and SPF results.
	for _, s := range v.DKIM {
		dr := dmarcreport.DKIMResult{Domain: s.Domain, Selector: s.Selector, Result: string(s.Status)}
		if s.Status != verify.StatusPass {
			dr.HumanResult = s.Reason
		}
		row.DKIMResults = append(row.DKIMResults, dr)
	}
	if s := v.SPF; s != nil && s.Domain != "" {
		// RFC 9990: only the MAIL FROM identity; for the null
		// reverse-path that is postmaster@HELO (RFC 7208 §2.4).
		if s.Identity == spf.IdentityMailFrom || s.Identity == spf.IdentityHELO && env.MailFrom == "" {
			row.SPFResult = &dmarcreport.SPFResult{Domain: s.Domain, Result: string(s.Status)}
		}
	}
	return dmarcreport.Record{Policy: published, Row: row, Time: at}
}

// domainOf returns the domain of an address, "" when it has none.
func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
	}
	return ""
}
