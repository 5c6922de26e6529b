package spf

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	pkgdomain "github.com/authmilter/authmilter/domain"
	"github.com/authmilter/authmilter/verify"
)

// Identity names the identity an SPF check authorizes (RFC 7208 §2.3,
// §2.4). Its values are the identity= of Received-SPF (§9.1) and the
// property of the smtp ptype in Authentication-Results (RFC 8601 §2.7.2:
// smtp.mailfrom, smtp.helo).
type Identity string

// The identities.
const (
	IdentityMailFrom Identity = "mailfrom"
	IdentityHELO     Identity = "helo"
)

// Args are the inputs of check_host() that come from the SMTP session
// (RFC 7208 §4.1).
type Args struct {
	// IP is the SMTP client's address. An IPv4-mapped IPv6 address is
	// treated as IPv4 (§5).
	IP netip.Addr
	// MailFromLocal and MailFromDomain are the local-part and domain of the
	// MAIL FROM reverse-path, both empty for the null reverse-path "<>".
	// SplitSender splits an address.
	MailFromLocal  string
	MailFromDomain string
	// HELO is the domain given in HELO or EHLO.
	HELO string
	// Receiver is the name of the host doing the check, the %{r} macro of
	// explanations (§7.3); "unknown" when empty.
	Receiver string
}

// Options holds the rarely changed settings. The zero value, like a nil
// *Options, gives the defaults of RFC 7208.
type Options struct {
	// DefaultExplanation is the explanation of a fail whose record has no
	// usable exp= (§6.2), an explain-string with macros. Empty means the
	// package's DefaultExplanation.
	DefaultExplanation string
	// MaxLookups limits the DNS-querying terms of one check (§4.6.4: 10,
	// the value used when it is 0 or less).
	MaxLookups int
	// MaxVoidLookups limits the terms whose query is answered NXDOMAIN or
	// NODATA (§4.6.4: 2, used when it is 0); negative disables the limit.
	MaxVoidLookups int
	// Now is the clock of the %{t} macro; nil means time.Now.
	Now func() time.Time
}

// Result is the outcome of one SPF check, with the facts an
// Authentication-Results or Received-SPF header field and a log line need.
type Result struct {
	// Status is one of none, neutral, pass, fail, softfail, temperror and
	// permerror (§2.6).
	Status verify.Status
	// Identity is the identity checked.
	Identity Identity
	// Sender is the <sender> of check_host(): local-part@domain, with
	// "postmaster" for a missing local-part (§4.3) and postmaster@<HELO>
	// for the null reverse-path and the HELO identity (§2.3, §2.4).
	Sender string
	// Domain is the <domain> checked: the domain of Sender, without a
	// trailing dot, in A-labels when given with U-labels or A-labels
	// (RFC 8616 §4). Sender keeps the local-part as given, which may be
	// UTF-8 in an SMTPUTF8 transaction.
	Domain string
	// IP is the client address as evaluated (IPv4-mapped addresses
	// unmapped); HELO is the HELO domain as given, in A-labels when it has
	// U-labels or A-labels (RFC 8616 §4).
	IP   netip.Addr
	HELO string
	// Mechanism is the term that decided, as written in the record that
	// decided it (after any redirect), e.g. "-all" or
	// "ip4:192.0.2.0/24"; "default" when no term matched (§4.7); for
	// temperror and permerror the term being evaluated, if any.
	Mechanism string
	// Explanation is set for fail: the domain's exp= text or the default
	// explanation (§6.2). It comes from a third party.
	Explanation string
	// Err says why for none, temperror and permerror, and is nil
	// otherwise. It wraps one of the package's sentinel errors.
	Err error
	// Lookups is the number of DNS-querying terms evaluated (at most the
	// limit), VoidLookups the number of them answered NXDOMAIN or NODATA
	// (one over the limit when that limit was exceeded) (§4.6.4).
	Lookups     int
	VoidLookups int
}

// Verify checks the MAIL FROM identity (RFC 7208 §2.4) of args. For the
// null reverse-path it checks postmaster@<HELO>, the same domain as
// VerifyHELO. A missing local-part becomes "postmaster" (§4.3).
func Verify(ctx context.Context, r dnscache.Resolver, args Args) Result {
	return VerifyWithOptions(ctx, r, args, nil)
}

// VerifyWithOptions is Verify with settings; opts may be nil.
func VerifyWithOptions(ctx context.Context, r dnscache.Resolver, args Args, opts *Options) Result {
	local, domain := args.MailFromLocal, args.MailFromDomain
	if domain == "" {
		// §2.4: for the null reverse-path the MAIL FROM identity is
		// postmaster@<HELO>.
		local, domain = "postmaster", args.HELO
	} else if local == "" {
		local = "postmaster" // §4.3
	}
	return run(ctx, r, args, opts, IdentityMailFrom, local, domain)
}

// VerifyHELO checks the HELO identity (RFC 7208 §2.3) of args:
// check_host() with <domain> the HELO domain and <sender>
// postmaster@<HELO>. A HELO that is not a multi-label domain name, such as
// an address literal, gives none.
func VerifyHELO(ctx context.Context, r dnscache.Resolver, args Args) Result {
	return VerifyHELOWithOptions(ctx, r, args, nil)
}

// VerifyHELOWithOptions is VerifyHELO with settings; opts may be nil.
func VerifyHELOWithOptions(ctx context.Context, r dnscache.Resolver, args Args, opts *Options) Result {
	return run(ctx, r, args, opts, IdentityHELO, "postmaster", args.HELO)
}

// SplitSender splits an address from MAIL FROM (without angle brackets)
// at its last "@" into local-part and domain. An address without "@" is
// taken as a bare domain; "" gives two empty strings, the null
// reverse-path.
func SplitSender(addr string) (local, domain string) {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i], addr[i+1:]
	}
	return "", addr
}

// run is the check_host() call the entry points share.
func run(ctx context.Context, r dnscache.Resolver, args Args, opts *Options, id Identity, local, domain string) Result {
	if opts == nil {
		opts = &Options{}
	}
	domain = strings.TrimSuffix(domain, ".")
	helo := args.HELO
	if h, err := pkgdomain.Parse(helo); err == nil && h.IsIDN() {
		helo = h.ASCII // RFC 8616 §4: %{h} and the reported HELO in A-labels
	}
	ip := args.IP.Unmap().WithZone("")
	res := Result{
		Identity: id,
		Sender:   local + "@" + domain,
		Domain:   domain,
		IP:       ip,
		HELO:     helo,
	}
	if !ip.IsValid() {
		res.Status, res.Err = verify.StatusNone, fmt.Errorf("spf: %w", ErrInvalidIP)
		return res
	}
	// §4.3: a malformed <domain> gives none without a query.
	d, err := checkDomain(domain)
	if err != nil {
		res.Status, res.Err = verify.StatusNone, fmt.Errorf("spf: %s: %w", id, err)
		return res
	}
	if d.IsIDN() {
		// RFC 8616 §4: a domain in U-labels is checked, and expanded by
		// %{d}, %{o} and %{s}, in its A-label form. A plain ASCII name
		// keeps the case it was given in.
		domain = d.ASCII
		res.Sender, res.Domain = local+"@"+domain, domain
	}
	c := &checker{
		ctx:        ctx,
		r:          r,
		ip:         ip,
		sender:     res.Sender,
		local:      local,
		origin:     domain,
		helo:       helo,
		eaiLocal:   !isASCII(local),
		receiver:   args.Receiver,
		now:        opts.Now,
		maxLookups: opts.MaxLookups,
		maxVoid:    opts.MaxVoidLookups,
	}
	if c.maxLookups <= 0 {
		c.maxLookups = 10
	}
	if c.maxVoid == 0 {
		c.maxVoid = 2
	}
	out := c.checkHost(domain, 0)
	res.Status, res.Mechanism, res.Lookups, res.VoidLookups = out.result, out.mech, c.lookups, c.voids
	if out.err != nil {
		res.Err = fmt.Errorf("spf: %s %s: %w", id, domain, out.err)
	}
	if out.result == verify.StatusFail {
		def := opts.DefaultExplanation
		if def == "" {
			def = DefaultExplanation
		}
		res.Explanation = c.explanation(out, def)
	}
	return res
}
