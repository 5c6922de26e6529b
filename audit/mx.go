package audit

import (
	"context"
	"fmt"
	"strings"

	"github.com/authmilter/authmilter/dnscache"
)

// lookupMX returns the domain's MX hosts; null reports a null MX
// (RFC 7505 §3: a single MX with preference 0 and target ".").
func (a *auditor) lookupMX(ctx context.Context) (hosts []string, null bool, err error) {
	mxs, _, err := a.r.LookupMX(ctx, a.domain)
	if err != nil {
		return nil, false, err
	}
	for _, mx := range mxs {
		h := strings.TrimSuffix(mx.Host, ".")
		if h == "" {
			null = true
			continue
		}
		hosts = append(hosts, strings.ToLower(h))
	}
	return hosts, null, nil
}

// mx is the mx check: MX records present, or a null MX.
func (a *auditor) mx(ctx context.Context) []Check {
	hosts, null, err := a.lookupMX(ctx)
	switch {
	case err != nil && dnscache.IsNotFound(err):
		return []Check{finding("mx", StatusWarn,
			"Publish MX records for the hosts that receive the domain's mail, or a null MX (\"MX 0 .\", RFC 7505) if it receives none.",
			"no MX records: senders fall back to the domain's address records (RFC 5321 §5.1), and bounces to the domain may be lost")}
	case err != nil:
		return []Check{unchecked("mx", "the MX records", err)}
	case null && len(hosts) > 0:
		return []Check{finding("mx", StatusFail,
			"Remove the null MX, or the other MX records.",
			"a null MX next to other MX records (%s): RFC 7505 §3 allows it only alone", strings.Join(hosts, ", "))}
	case null:
		return []Check{finding("mx", StatusInfo,
			"Nothing, if the domain neither sends nor receives mail; otherwise publish its MX records instead.",
			"null MX (RFC 7505): this domain receives no mail, so it should send none (replies and bounces could not reach it)")}
	}
	return []Check{pass("mx", "%s", fmt.Sprint(strings.Join(hosts, ", ")))}
}
