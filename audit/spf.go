package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/authmilter/authmilter/verify/spf"
)

// RFC 7208 §4.6.4 limits.
const (
	maxSPFLookups = 10
	maxSPFVoid    = 2
)

// spf checks the SPF record tree (spf.record, spf.lookups, spf.all,
// spf.ptr).
func (a *auditor) spf(ctx context.Context) []Check {
	s, err := spf.SurveyDomain(ctx, a.r, a.domain)
	var syn *spf.SyntaxError
	switch {
	case err == nil:
	case errors.Is(err, spf.ErrDNS) && isTemporary(err):
		return []Check{unchecked("spf.record", "the SPF record", err)}
	case errors.Is(err, spf.ErrNoRecord):
		return []Check{finding("spf.record", StatusFail,
			fmt.Sprintf(`Publish one TXT record at %s listing your senders, e.g. "v=spf1 mx -all".`, a.domain),
			"no v=spf1 record at %s: receivers get SPF none", a.domain)}
	case errors.Is(err, spf.ErrMultipleRecords):
		return []Check{finding("spf.record", StatusFail,
			"Merge them into a single v=spf1 record.",
			"more than one v=spf1 record: receivers return permerror (RFC 7208 §4.5): %v", err)}
	case errors.As(err, &syn):
		return []Check{finding("spf.record", StatusFail,
			"Correct the term; receivers return permerror for the whole record (RFC 7208 §4.6).",
			"%q does not parse: %v", syn.Record, syn)}
	default:
		return []Check{finding("spf.record", StatusFail, "Correct the record.", "%v", err)}
	}

	checks := []Check{pass("spf.record", "%q", s.Record)}
	var limits []Check
	for _, p := range s.Problems {
		if isTemporary(p) {
			checks = append(checks, unchecked("spf.record", "a record it includes", p))
			continue
		}
		if errors.Is(p, spf.ErrTooManyLookups) {
			limits = append(limits, finding("spf.lookups", StatusFail,
				"Remove the includes and redirects that lead back or repeat, to get to 10 or fewer DNS-querying terms.",
				"%v: receivers return permerror (RFC 7208 §4.6.4)", p))
			continue
		}
		checks = append(checks, finding("spf.record", StatusFail,
			"Remove or correct the term: receivers return permerror when evaluation reaches it.",
			"%v", p))
	}

	// RFC 7208 §4.6.4: at most 10 DNS-querying terms, at most 2 void lookups.
	macros := ""
	if len(s.MacroTerms) > 0 {
		macros = fmt.Sprintf("; terms with macros, whose targets depend on the message, not queried: %s", strings.Join(s.MacroTerms, ", "))
	}
	if s.Lookups > maxSPFLookups {
		checks = append(checks, finding("spf.lookups", StatusFail,
			"Remove includes you no longer use, or replace some with ip4:/ip6: ranges, to get to 10 or fewer.",
			"%d DNS-querying terms, over the limit of %d (RFC 7208 §4.6.4): receivers return permerror: %s",
			s.Lookups, maxSPFLookups, strings.Join(s.LookupTerms, ", ")))
	} else {
		checks = append(checks, pass("spf.lookups", "%d DNS-querying %s of at most %d%s", s.Lookups, plural(s.Lookups, "term", "terms"), maxSPFLookups, macros))
	}
	if s.VoidLookups > maxSPFVoid {
		checks = append(checks, finding("spf.lookups", StatusFail,
			"Remove the terms whose names do not exist or have no records.",
			"%d void lookups, over the limit of %d (RFC 7208 §4.6.4): receivers return permerror: %s",
			s.VoidLookups, maxSPFVoid, strings.Join(s.VoidTerms, ", ")))
	} else if s.VoidLookups > 0 {
		checks = append(checks, finding("spf.lookups", StatusWarn,
			"Remove the terms whose names do not exist or have no records.",
			"%d void %s (limit %d): %s", s.VoidLookups, plural(s.VoidLookups, "lookup", "lookups"), maxSPFVoid, strings.Join(s.VoidTerms, ", ")))
	}

	checks = append(checks, limits...)

	// spf.all: what a sender that matched nothing gets (RFC 7208 §4.7, §5.1).
	where := ""
	if s.AllDomain != "" && s.AllDomain != a.domain {
		where = " (from the redirect to " + s.AllDomain + ")"
	}
	switch all := strings.ToLower(s.All); all {
	case "-all", "~all":
		checks = append(checks, pass("spf.all", "%s%s", s.All, where))
	case "?all":
		checks = append(checks, finding("spf.all", StatusWarn,
			`End the record with "~all" or "-all" once it lists all your senders.`,
			"?all%s: other senders get neutral, which protects nothing", where))
	case "all", "+all":
		checks = append(checks, finding("spf.all", StatusFail,
			`Replace it with "-all" (or "~all"): "+all" authorizes every host on the Internet.`,
			"%s%s: every host may send as %s", s.All, where, a.domain))
	default:
		checks = append(checks, finding("spf.all", StatusWarn,
			`End the record with "-all" (or "~all").`,
			"no all mechanism: other senders get neutral (RFC 7208 §4.7)"))
	}

	// RFC 7208 §5.5: "This mechanism SHOULD NOT be published."
	if len(s.PTR) > 0 {
		checks = append(checks, finding("spf.ptr", StatusWarn,
			"Replace ptr with the ip4:/ip6: ranges or a: names of your senders.",
			"ptr used (RFC 7208 §5.5: SHOULD NOT be published; slow, and some receivers skip it): %s", strings.Join(s.PTR, ", ")))
	} else {
		checks = append(checks, pass("spf.ptr", "no ptr mechanism"))
	}
	return checks
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
