package audit

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/internal/tagvalue"
	"github.com/authmilter/authmilter/verify/dmarc"
)

// ErrBIMI is wrapped by every BIMI record parse error.
var ErrBIMI = errors.New("bimi")

// BIMIRecord is a parsed BIMI assertion record
// (draft-brand-indicators-for-message-identification).
type BIMIRecord struct {
	Location  string // l=, the SVG logo; empty when the domain declines to publish one
	Authority string // a=, the mark certificate (VMC/CMC); may be empty
}

// IsBIMIRecord reports whether txt starts with "v=BIMI1".
func IsBIMIRecord(txt string) bool {
	v, _, _ := strings.Cut(txt, ";")
	k, val, ok := strings.Cut(v, "=")
	return ok && strings.TrimSpace(k) == "v" && strings.TrimSpace(val) == "BIMI1"
}

// ParseBIMIRecord parses "v=BIMI1; l=URI; a=URI": v first, l and a https
// URIs or empty, other tags ignored.
func ParseBIMIRecord(txt string) (*BIMIRecord, error) {
	if !IsBIMIRecord(txt) {
		return nil, fmt.Errorf("%w: record does not start with v=BIMI1", ErrBIMI)
	}
	tags, err := tagvalue.Parse(txt)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBIMI, err)
	}
	rec := &BIMIRecord{}
	rec.Location, _ = tags.Get("l")
	rec.Authority, _ = tags.Get("a")
	for _, f := range []struct{ tag, v string }{{"l", rec.Location}, {"a", rec.Authority}} {
		if f.v == "" {
			continue
		}
		u, err := url.Parse(f.v)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("%w: %s=%q is not an https URI", ErrBIMI, f.tag, f.v)
		}
	}
	return rec, nil
}

// bimi is the bimi check: the default._bimi record, an https SVG, and DMARC
// at enforcement, without which receivers show no logo.
func (a *auditor) bimi(ctx context.Context) []Check {
	name := "default._bimi." + a.domain
	txts, _, err := a.r.LookupTXT(ctx, name)
	switch {
	case err != nil && dnscache.IsNotFound(err):
		return []Check{finding("bimi", StatusInfo,
			"To show a logo in supporting mailboxes, publish TXT \"v=BIMI1; l=https://…/logo.svg; a=https://…/vmc.pem\" at "+name+".",
			"no BIMI record at %s", name)}
	case err != nil:
		return []Check{unchecked("bimi", "the BIMI record", err)}
	}
	var recs []string
	for _, t := range txts {
		if IsBIMIRecord(t) {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return []Check{finding("bimi", StatusInfo, "Publish a v=BIMI1 record at "+name+" to show a logo.", "no v=BIMI1 record at %s", name)}
	case 1:
	default:
		return []Check{finding("bimi", StatusFail, "Keep one v=BIMI1 record.", "%d v=BIMI1 records at %s: receivers use none", len(recs), name)}
	}
	rec, err := ParseBIMIRecord(recs[0])
	if err != nil {
		return []Check{finding("bimi", StatusFail, "Give https URIs in l= and a=.", "%s: %q: %v", name, recs[0], err)}
	}
	if rec.Location == "" {
		return []Check{finding("bimi", StatusInfo, "Nothing, unless you want a logo shown: then give its https URL in l=.",
			"%s: empty l=: the domain declines to show a logo", name)}
	}
	var checks []Check
	if u, _ := url.Parse(rec.Location); !strings.EqualFold(path.Ext(u.Path), ".svg") {
		checks = append(checks, finding("bimi", StatusFail, "Point l= at the logo in SVG Tiny PS format (a .svg file).",
			"%s: l=%s is not an SVG file", name, rec.Location))
	}
	// Receivers show the logo only for mail under a DMARC policy at
	// enforcement: quarantine or reject, applied to all mail.
	d, err := a.discoverDMARC(ctx)
	switch {
	case err != nil && isTemporary(err):
		checks = append(checks, unchecked("bimi", "the DMARC policy BIMI needs", err))
	case err != nil || d.Record == nil:
		checks = append(checks, finding("bimi", StatusFail, "Publish a DMARC record with p=quarantine or p=reject.",
			"%s: no DMARC policy: receivers will not show the logo", name))
	default:
		p, tag := a.applicablePolicy(d)
		switch {
		case p != dmarc.PolicyQuarantine && p != dmarc.PolicyReject:
			checks = append(checks, finding("bimi", StatusFail, "Move DMARC to p=quarantine or p=reject.",
				"%s: DMARC %s=%s is not at enforcement: receivers will not show the logo", name, tag, orDash(string(p))))
		case d.Record.Percent < 100:
			checks = append(checks, finding("bimi", StatusFail, "Remove pct= from the DMARC record.",
				"%s: DMARC pct=%d: receivers will not show the logo", name, d.Record.Percent))
		case d.Record.Testing:
			checks = append(checks, finding("bimi", StatusFail, "Remove t=y from the DMARC record.",
				"%s: DMARC t=y: receivers will not show the logo", name))
		}
	}
	if rec.Authority == "" {
		checks = append(checks, finding("bimi", StatusWarn,
			"Get a Verified Mark Certificate (or Common Mark Certificate) and give its URL in a=.",
			"%s: no a= (mark certificate): the largest mailbox providers show no logo without one", name))
	}
	if len(checks) == 0 {
		checks = append(checks, pass("bimi", "%s: l=%s a=%s", name, rec.Location, rec.Authority))
	}
	return checks
}
