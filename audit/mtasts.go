package audit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	neturl "net/url"
	"strings"

	"github.com/authmilter/authmilter/dnscache"
)

// minSTSMaxAge is the max_age under which a policy is reported: RFC 8461
// §3.2 recommends "weeks or greater"; one day is the floor here.
const minSTSMaxAge = 86400

// mtaSTS is the mta_sts check: the _mta-sts TXT record, then the policy
// fetched over HTTPS and checked against the MX records (RFC 8461).
func (a *auditor) mtaSTS(ctx context.Context) []Check {
	name := "_mta-sts." + a.domain
	txts, _, err := a.r.LookupTXT(ctx, name)
	switch {
	case err != nil && dnscache.IsNotFound(err):
		return []Check{finding("mta_sts", StatusInfo,
			"To require TLS from senders, publish an MTA-STS policy (RFC 8461) and the "+name+" record.",
			"no MTA-STS record at %s", name)}
	case err != nil:
		return []Check{unchecked("mta_sts", "the MTA-STS record", err)}
	}
	var recs []string
	for _, t := range txts {
		if IsSTSRecord(t) {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return []Check{finding("mta_sts", StatusInfo,
			"To require TLS from senders, publish an MTA-STS policy (RFC 8461) and the "+name+" record.",
			"no v=STSv1 record at %s", name)}
	case 1:
	default:
		return []Check{finding("mta_sts", StatusFail, "Keep one v=STSv1 record.",
			"%d v=STSv1 records at %s: senders use none (RFC 8461 §3.1)", len(recs), name)}
	}
	rec, err := ParseSTSRecord(recs[0])
	if err != nil {
		return []Check{finding("mta_sts", StatusFail, `Publish "v=STSv1; id=…" with an id of 1 to 32 letters and digits.`,
			"%s: %q: %v", name, recs[0], err)}
	}
	checks := []Check{pass("mta_sts", "%s: id=%s", name, rec.ID)}
	return append(checks, a.mtaSTSPolicy(ctx)...)
}

// mtaSTSPolicy fetches and checks the policy (RFC 8461 §3.2, §3.3).
func (a *auditor) mtaSTSPolicy(ctx context.Context) []Check {
	url := "https://mta-sts." + a.domain + "/.well-known/mta-sts.txt"
	text, err := a.fetchPolicy(ctx, url)
	if err != nil {
		var cert *tls.CertificateVerificationError
		var unknown x509.UnknownAuthorityError
		var invalid x509.CertificateInvalidError
		var hostname x509.HostnameError
		switch {
		case errors.As(err, &cert), errors.As(err, &unknown), errors.As(err, &invalid), errors.As(err, &hostname):
			return []Check{finding("mta_sts", StatusFail,
				"Serve mta-sts."+a.domain+" with a valid, unexpired certificate for that name from a public CA.",
				"%s: the certificate does not verify, so senders ignore the policy (RFC 8461 §3.3): %v", url, err)}
		case isTemporary(err):
			return []Check{unchecked("mta_sts", "the policy at "+url, err)}
		}
		return []Check{finding("mta_sts", StatusFail,
			"Serve the policy at "+url+" (HTTPS, status 200, text/plain, no redirect).",
			"%s: %v", url, err)}
	}
	p, err := ParseSTSPolicy(text)
	if err != nil {
		return []Check{finding("mta_sts", StatusFail, "Correct the policy file (RFC 8461 §3.2).", "%s: %v", url, err)}
	}
	var checks []Check
	switch p.Mode {
	case STSNone:
		return []Check{finding("mta_sts", StatusWarn,
			"Use mode: testing, then enforce, or remove the _mta-sts record.",
			"%s: mode none: the policy is withdrawn", url)}
	case STSTesting:
		checks = append(checks, finding("mta_sts", StatusWarn,
			"Move to mode: enforce once the TLS reports show no failures.",
			"%s: mode testing: senders deliver even when TLS fails, and only report it (max_age %d, mx %s)", url, p.MaxAge, strings.Join(p.MX, ", ")))
	}
	hosts, null, err := a.lookupMX(ctx)
	switch {
	case err != nil && isTemporary(err):
		checks = append(checks, unchecked("mta_sts", "the MX records the policy must cover", err))
	case err == nil && !null:
		var uncovered []string
		for _, h := range hosts {
			if !p.Matches(h) {
				uncovered = append(uncovered, h)
			}
		}
		if len(uncovered) > 0 {
			checks = append(checks, finding("mta_sts", StatusFail,
				"Add an mx: line for each of them to the policy (and change the record's id=).",
				"%s: MX %s not matched by any mx: pattern (%s): senders following the policy will not deliver there (RFC 8461 §4.1)",
				url, strings.Join(uncovered, ", "), strings.Join(p.MX, ", ")))
		}
	}
	if p.MaxAge < minSTSMaxAge {
		checks = append(checks, finding("mta_sts", StatusWarn,
			"Raise max_age to a week (604800) or more.",
			"%s: max_age %d: senders forget the policy within a day (RFC 8461 §3.2 recommends weeks)", url, p.MaxAge))
	}
	if len(checks) == 0 {
		checks = append(checks, pass("mta_sts", "%s: mode %s, max_age %d, mx %s", url, p.Mode, p.MaxAge, strings.Join(p.MX, ", ")))
	}
	return checks
}

// fetchPolicy GETs the policy: status 200, media type text/plain, no
// redirect (RFC 8461 §3.3).
func (a *auditor) fetchPolicy(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the detail already
		}
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		where := ""
		if loc := resp.Header.Get("Location"); loc != "" {
			where = " to " + loc + " (redirects are not followed)"
		}
		return "", fmt.Errorf("HTTP status %d%s", resp.StatusCode, where)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/plain" {
		return "", fmt.Errorf("Content-Type %q, want text/plain", resp.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPolicySize+1))
	if err != nil {
		return "", fmt.Errorf("reading the policy: %w", err)
	}
	if len(body) > maxPolicySize {
		return "", fmt.Errorf("policy larger than %d bytes", maxPolicySize)
	}
	return string(body), nil
}
