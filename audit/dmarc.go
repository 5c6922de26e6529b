package audit

import (
	"context"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/verify/dmarc"
)

// discoverDMARC finds the DMARC record that applies to the domain with the
// RFC 9989 §4.10 tree walk.
func (a *auditor) discoverDMARC(ctx context.Context) (dmarc.Discovery, error) {
	return dmarc.TreeWalk{}.Discover(ctx, a.r, a.domain)
}

// dmarc checks the DMARC record (dmarc.record, dmarc.policy,
// dmarc.deprecated, dmarc.rua).
func (a *auditor) dmarc(ctx context.Context) []Check {
	name := "_dmarc." + a.domain
	d, err := a.discoverDMARC(ctx)
	if err != nil {
		if isTemporary(err) {
			return []Check{unchecked("dmarc.record", "the DMARC record", err)}
		}
		return []Check{finding("dmarc.record", StatusFail, "Correct the record.", "%v", err)}
	}
	if slices.Contains(d.Discarded, a.domain) {
		return []Check{finding("dmarc.record", StatusFail,
			"Keep exactly one v=DMARC1 TXT record at "+name+".",
			"several v=DMARC1 records at %s: receivers discard them all (RFC 9989 §4.10)", name)}
	}
	rec := d.Record
	if rec == nil {
		detail := fmt.Sprintf("no DMARC record at %s, nor above it (RFC 9989 §4.10 tree walk)", name)
		// A TXT record there that is not DMARC is a likely typo.
		if txts, _, err := a.r.LookupTXT(ctx, name); err == nil && len(txts) > 0 {
			detail += fmt.Sprintf("; %s has TXT %q, which does not start with v=DMARC1;", name, txts)
		}
		return []Check{finding("dmarc.record", StatusFail,
			fmt.Sprintf(`Publish a TXT record at %s, e.g. "v=DMARC1; p=none; rua=mailto:dmarc-reports@%s", and tighten p= once the reports look right.`, name, a.domain),
			"%s", detail)}
	}

	var checks []Check
	where := "at " + name
	if d.PolicyDomain != a.domain {
		where = fmt.Sprintf("inherited from _dmarc.%s through the RFC 9989 §4.10 tree walk", d.PolicyDomain)
	}
	switch {
	case rec.PSD == dmarc.PSDYes && d.PolicyDomain != a.domain:
		checks = append(checks, finding("dmarc.record", StatusWarn,
			"Publish the domain's own DMARC record at "+name+".",
			"only the public suffix's record applies, %s: %q", where, rec.Raw))
	default:
		checks = append(checks, pass("dmarc.record", "%s: %q", where, rec.Raw))
	}
	if len(rec.Invalid) > 0 {
		checks = append(checks, finding("dmarc.record", StatusWarn,
			"Correct the values; receivers use the defaults instead (RFC 9989 §4.8).",
			"malformed tags, ignored by receivers: %s", quoteTags(rec, rec.Invalid)))
	}
	if len(rec.Ignored) > 0 {
		checks = append(checks, finding("dmarc.record", StatusWarn,
			"Remove them or correct their spelling; receivers ignore them (RFC 9989 §4.7).",
			"unknown tags or text, ignored: %q", rec.Ignored))
	}
	if len(rec.Duplicate) > 0 {
		checks = append(checks, finding("dmarc.record", StatusWarn,
			"Give each tag once; receivers use the first.",
			"tags given more than once: %s", strings.Join(rec.Duplicate, ", ")))
	}
	checks = append(checks, a.dmarcPolicy(d))
	checks = append(checks, dmarcDeprecated(rec)...)
	checks = append(checks, a.dmarcRUA(ctx, d)...)
	return checks
}

// quoteTags returns tag=value for the named tags of rec.
func quoteTags(rec *dmarc.Record, names []string) string {
	var out []string
	for _, n := range names {
		out = append(out, n+"="+tagValue(rec.Raw, n))
	}
	return strings.Join(out, ", ")
}

// tagValue returns the value of tag in a tag=value record, as written.
func tagValue(raw, tag string) string {
	for spec := range strings.SplitSeq(raw, ";") {
		k, v, ok := strings.Cut(spec, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), tag) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// applicablePolicy returns the policy receivers apply to mail from the
// domain and the tag it comes from (RFC 9989 §4.10.1: sp for a subdomain
// of the Policy Domain, else p).
func (a *auditor) applicablePolicy(d dmarc.Discovery) (dmarc.Policy, string) {
	rec := d.Record
	if d.PolicyDomain != a.domain && rec.SubdomainPolicy != "" {
		return rec.SubdomainPolicy, "sp"
	}
	if rec.Policy == "" && rec.HasValidRUA() {
		// RFC 9989 §4.10.1: no valid p, but a valid rua: as p=none.
		return dmarc.PolicyNone, "p (absent, taken as none)"
	}
	return rec.Policy, "p"
}

// dmarcPolicy is dmarc.policy: p=none monitors only; quarantine and reject
// protect; sp and np reported.
func (a *auditor) dmarcPolicy(d dmarc.Discovery) Check {
	rec := d.Record
	p, tag := a.applicablePolicy(d)
	others := fmt.Sprintf("p=%s, sp=%s, np=%s", orDash(string(rec.Policy)), orDash(string(rec.SubdomainPolicy)), orDash(string(rec.NonexistentPolicy)))
	if rec.Testing {
		others += ", t=y"
	}
	switch {
	case p == "":
		return finding("dmarc.policy", StatusFail,
			"Add p=none (to start) or p=quarantine/p=reject.",
			"no valid p= and no valid rua=: receivers apply no policy (RFC 9989 §4.10.1) (%s)", others)
	case p == dmarc.PolicyNone:
		return finding("dmarc.policy", StatusWarn,
			"Once the aggregate reports show all your mail passing, move to p=quarantine, then p=reject.",
			"%s=none: monitoring only, spoofed mail is delivered (%s)", tag, others)
	case rec.Testing:
		return finding("dmarc.policy", StatusWarn,
			"Remove t=y once the reports show all your mail passing.",
			"t=y: receivers apply the next less strict policy than %s=%s (RFC 9989 §4.7) (%s)", tag, p, others)
	}
	if rec.SubdomainPolicy == dmarc.PolicyNone || rec.NonexistentPolicy == dmarc.PolicyNone {
		return finding("dmarc.policy", StatusWarn,
			"Remove sp=none and np=none, or raise them, unless subdomains send mail that does not pass DMARC.",
			"%s=%s, but subdomains are only monitored (%s)", tag, p, others)
	}
	return pass("dmarc.policy", "%s=%s (%s)", tag, p, others)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// dmarcDeprecated is dmarc.deprecated: the RFC 7489 tags RFC 9989 removed
// (Appendix C.5.2).
func dmarcDeprecated(rec *dmarc.Record) []Check {
	what := map[string]string{
		"pct": "receivers following RFC 9989 ignore it and apply the policy to all failing mail (t=y is the ramp-up now)",
		"rf":  "failure reports are always in the RFC 6591 format (RFC 9991)",
		"ri":  "receivers send aggregate reports about once a day whatever it says (RFC 9990)",
	}
	var checks []Check
	for _, tag := range []string{"pct", "rf", "ri"} {
		if rec.Has(tag) {
			checks = append(checks, finding("dmarc.deprecated", StatusWarn,
				"Remove "+tag+"=; RFC 9989 removed it.",
				"%s=%s: %s", tag, tagValue(rec.Raw, tag), what[tag]))
		}
	}
	if len(checks) == 0 {
		checks = append(checks, pass("dmarc.deprecated", "no pct, rf or ri"))
	}
	return checks
}

// dmarcRUA is dmarc.rua: each aggregate-report URI; one outside the Policy
// Domain's Organizational Domain must be authorized by the report
// consumer (RFC 9990, "Verifying External Destinations").
func (a *auditor) dmarcRUA(ctx context.Context, d dmarc.Discovery) []Check {
	rec := d.Record
	if len(rec.RUA) == 0 {
		return []Check{finding("dmarc.rua", StatusWarn,
			fmt.Sprintf("Add rua=mailto:dmarc-reports@%s (or a reporting service's address) to the record.", d.PolicyDomain),
			"no rua=: nobody receives aggregate reports, so nobody sees who sends as the domain")}
	}
	// One lookup per URI, all at once.
	checks := make([]Check, len(rec.RUA))
	var wg sync.WaitGroup
	for i, uri := range rec.RUA {
		wg.Go(func() { checks[i] = a.checkRUA(ctx, d, uri) })
	}
	wg.Wait()
	return checks
}

func (a *auditor) checkRUA(ctx context.Context, d dmarc.Discovery, uri string) Check {
	u, err := url.Parse(uri)
	if err != nil || !strings.EqualFold(u.Scheme, "mailto") {
		return finding("dmarc.rua", StatusWarn, "Use a mailto: URI; RFC 9990 reports go by mail.",
			"%s: not a mailto: URI, receivers send no reports to it", uri)
	}
	addr, _, _ := strings.Cut(u.Opaque, "?")
	if addr == "" {
		addr = u.Path
	}
	addr, _ = url.PathUnescape(addr)
	pa, err := mail.ParseAddress(addr)
	at := strings.LastIndexByte(addr, '@')
	if err != nil || at < 0 {
		return finding("dmarc.rua", StatusFail, "Give a full address, mailto:name@domain.",
			"%s: %q is not a mail address", uri, addr)
	}
	host := strings.ToLower(strings.TrimSuffix(pa.Address[strings.LastIndexByte(pa.Address, '@')+1:], "."))
	destOrg, err := dmarc.TreeWalk{}.OrgDomain(ctx, a.r, host)
	if err != nil {
		return unchecked("dmarc.rua", uri, err)
	}
	if destOrg == d.OrgDomain {
		return pass("dmarc.rua", "%s, within the organizational domain %s", uri, d.OrgDomain)
	}
	// RFC 9990 "Verifying External Destinations", steps 1–8: <policy domain>._report._dmarc.<host> must
	// hold a v=DMARC1 record.
	name := d.PolicyDomain + "._report._dmarc." + host
	fix := fmt.Sprintf(`Ask the operator of %s to publish TXT "v=DMARC1" at %s (or *._report._dmarc.%s), or send reports within %s.`, host, name, host, d.OrgDomain)
	txts, _, err := a.r.LookupTXT(ctx, name)
	switch {
	case err != nil && isTemporary(err):
		return unchecked("dmarc.rua", "the authorization of "+uri, err)
	case err != nil && !dnscache.IsNotFound(err):
		return finding("dmarc.rua", StatusFail, fix, "%s: TXT %s: %v", uri, name, err)
	}
	if slices.ContainsFunc(txts, dmarc.IsDMARCRecord) {
		return pass("dmarc.rua", "%s, outside %s, authorized by %s", uri, d.OrgDomain, name)
	}
	return finding("dmarc.rua", StatusFail, fix,
		"%s is outside the organizational domain %s and %s has no v=DMARC1 record: receivers send it no reports (RFC 9990, Verifying External Destinations)", uri, d.OrgDomain, name)
}
