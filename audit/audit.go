package audit

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/domain"
)

// Status is the outcome of one check.
type Status string

// The statuses, from best to worst.
const (
	StatusPass Status = "pass" // as it should be
	StatusInfo Status = "info" // worth knowing, nothing to fix
	StatusWarn Status = "warn" // works, but should change, or could not be checked
	StatusFail Status = "fail" // broken: receivers will not use it as meant
)

func (s Status) rank() int {
	switch s {
	case StatusInfo:
		return 1
	case StatusWarn:
		return 2
	case StatusFail:
		return 3
	}
	return 0
}

// Check is one finding.
type Check struct {
	// ID names the check (see the package documentation); several checks
	// may share an id, one per record or URI looked at.
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Detail says what was found; Fix, empty for a pass, how to fix it.
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

// Report is the result of auditing one domain, the checks in a fixed order.
type Report struct {
	Domain string  `json:"domain"`
	Checks []Check `json:"checks"`
}

// Failed reports whether any check failed.
func (r Report) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == StatusFail {
			return true
		}
	}
	return false
}

// Worst returns the worst status among the checks with id, and false when
// there is none.
func (r Report) Worst(id string) (Status, bool) {
	var worst Status
	found := false
	for _, c := range r.Checks {
		if c.ID == id && (!found || c.Status.rank() > worst.rank()) {
			worst, found = c.Status, true
		}
	}
	return worst, found
}

// Key is a configured private key's public half, to compare with the key
// published in the DNS (dkim.key_match).
type Key struct {
	Domain   string
	Selector string
	Public   crypto.PublicKey // *rsa.PublicKey or ed25519.PublicKey
	// Source says where the key is configured, for messages
	// ("arc.seal.key_file /etc/authmilter/arc.key").
	Source string
}

// DefaultTimeout bounds each group of lookups when Options.Timeout is zero.
const DefaultTimeout = 15 * time.Second

// Options are the inputs of an audit besides the domain.
type Options struct {
	// Resolver answers every DNS lookup (required).
	Resolver dnscache.Resolver
	// HTTPClient fetches MTA-STS policies. It must not follow redirects
	// (RFC 8461 §3.3); NewHTTPClient makes one. Nil: NewHTTPClient with
	// the system's roots, resolving through Resolver.
	HTTPClient *http.Client
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Selectors are the DKIM selectors to check under the domain.
	Selectors []string
	// Keys are the configured keys; those of the audited domain are
	// checked (dkim.key) and compared with the DNS (dkim.key_match).
	Keys []Key
	// Timeout bounds each group of checks (DefaultTimeout when 0).
	Timeout time.Duration
}

// auditor holds one domain's audit.
type auditor struct {
	domain string
	opts   Options
	r      dnscache.Resolver
	now    func() time.Time
	http   *http.Client
}

// Domain audits domain. It never fails: problems are checks.
func Domain(ctx context.Context, domain string, opts *Options) Report {
	var o Options
	if opts != nil {
		o = *opts
	}
	a := &auditor{opts: o, r: o.Resolver, now: o.Now, http: o.HTTPClient}
	if a.now == nil {
		a.now = time.Now
	}
	if o.Timeout <= 0 {
		a.opts.Timeout = DefaultTimeout
	}
	name, err := ParseDomain(domain)
	rep := Report{Domain: name}
	if err != nil {
		rep.Domain = domain
		rep.Checks = []Check{{ID: "domain", Status: StatusFail, Detail: err.Error(), Fix: "Give a domain name such as example.com."}}
		return rep
	}
	if a.r == nil {
		rep.Checks = []Check{{ID: "domain", Status: StatusFail, Detail: "no resolver to look the records up with", Fix: "Set Options.Resolver."}}
		return rep
	}
	a.domain = name
	if a.http == nil {
		a.http = NewHTTPClient(a.r, nil, a.now)
	}
	groups := []func(context.Context) []Check{
		a.spf, a.dmarc, a.dkim, a.mx, a.mtaSTS, a.tlsRPT, a.bimi,
	}
	results := make([][]Check, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() {
			gctx, cancel := context.WithTimeout(ctx, a.opts.Timeout)
			defer cancel()
			results[i] = g(gctx)
		})
	}
	wg.Wait()
	for _, cs := range results {
		rep.Checks = append(rep.Checks, cs...)
	}
	return rep
}

// ParseDomain checks a domain name given to Domain (U-labels or A-labels,
// any case, an optional trailing dot) and returns its A-label form, the
// form every lookup uses (RFC 8616).
func ParseDomain(input string) (string, error) {
	n, err := domain.Parse(strings.TrimSpace(input))
	if err != nil {
		return "", err
	}
	if n.Labels() < 2 {
		return "", fmt.Errorf("%q is not a domain name with at least two labels", input)
	}
	// RFC 5321 §4.1.2: a mail domain's labels start and end with a letter
	// or digit.
	for l := range strings.SplitSeq(n.ASCII, ".") {
		if strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return "", fmt.Errorf("%q is not a mail domain: label %q starts or ends with a hyphen", input, l)
		}
	}
	return n.ASCII, nil
}

// isTemporary reports a failure that says nothing about the record: a
// temporary DNS failure or the end of the time allowed.
func isTemporary(err error) bool {
	return dnscache.IsTemporary(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// unchecked is the check for a lookup that failed temporarily.
func unchecked(id, what string, err error) Check {
	return Check{
		ID: id, Status: StatusWarn,
		Detail: fmt.Sprintf("%s could not be checked: %v", what, err),
		Fix:    "Run the audit again; if this persists, make sure the domain's name servers answer.",
	}
}

func pass(id, format string, args ...any) Check {
	return Check{ID: id, Status: StatusPass, Detail: fmt.Sprintf(format, args...)}
}

func finding(id string, s Status, fix, format string, args ...any) Check {
	return Check{ID: id, Status: s, Detail: fmt.Sprintf(format, args...), Fix: fix}
}
