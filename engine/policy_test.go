package engine

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/dmarc"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	ip := netip.MustParseAddr("192.0.2.10")
	fail := func(disp dmarc.Policy) *dmarc.Result {
		return &dmarc.Result{Status: verify.StatusFail, AuthorDomain: "example.com", PolicyDomain: "example.com",
			Policy: disp, Disposition: disp, Reason: "no aligned pass"}
	}
	trustedChain := &arc.Result{Status: verify.StatusPass, Instances: 1, Sets: []arc.Set{
		{Instance: 1, Domain: "lists.example.org", AAR: "lists.example.org; spf=pass smtp.mailfrom=example.com; dmarc=pass header.from=example.com", CV: "none", AMSValid: true},
	}}
	untrustedPass := &arc.Result{Status: verify.StatusPass, Instances: 1, Sets: []arc.Set{
		{Instance: 1, Domain: "other.example", AAR: "other.example; dmarc=pass header.from=example.com", CV: "none", AMSValid: true},
	}}
	reducedBy := func(pol, disp dmarc.Policy, why dmarc.Reduction) *dmarc.Result {
		r := fail(pol)
		r.Disposition, r.Reduced = disp, why
		return r
	}
	brokenChain := &arc.Result{Status: verify.StatusFail, Instances: 1, Sets: trustedChain.Sets}

	base := DefaultPolicy()
	base.TrustedSealers = []string{"lists.example.org"}
	tests := []struct {
		name     string
		pol      func(p *Policy)
		d        *dmarc.Result
		a        *arc.Result
		action   Action
		reply    string
		override string
	}{
		{name: "pass accepted", d: &dmarc.Result{Status: verify.StatusPass}, action: ActionAccept},
		{name: "none accepted", d: &dmarc.Result{Status: verify.StatusNone}, action: ActionAccept},
		{name: "permerror accepted", d: &dmarc.Result{Status: verify.StatusPermerror}, action: ActionAccept},
		{name: "fail p=none accepted", d: fail(dmarc.PolicyNone), action: ActionAccept},
		{name: "fail p=reject rejected", d: fail(dmarc.PolicyReject), action: ActionReject, reply: "550 5.7.1 "},
		{name: "fail p=quarantine held", d: fail(dmarc.PolicyQuarantine), action: ActionQuarantine},
		{name: "quarantine header only", pol: func(p *Policy) { p.Quarantine = QuarantineHeader }, d: fail(dmarc.PolicyQuarantine), action: ActionAccept, override: "local_policy: quarantine left to the recipient's filters, policy.quarantine: header"},
		{name: "not enforced", pol: func(p *Policy) { p.Enforce = false }, d: fail(dmarc.PolicyReject), action: ActionAccept, override: "local_policy: not enforced, policy.enforce: false"},
		{name: "temperror tempfails", d: &dmarc.Result{Status: verify.StatusTemperror, AuthorDomain: "example.com"}, action: ActionTempfail, reply: "451 4.7.1 ", override: "other: DMARC temperror deferred"},
		{name: "temperror accepted when configured", pol: func(p *Policy) { p.Temperror = TemperrorAccept }, d: &dmarc.Result{Status: verify.StatusTemperror}, action: ActionAccept, override: "local_policy: DMARC temperror accepted, policy.temperror: accept"},
		{name: "allow network", pol: func(p *Policy) { p.AllowNetworks = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} }, d: fail(dmarc.PolicyReject), action: ActionAccept, override: "local_policy"},
		{name: "allow domain covers subdomains", pol: func(p *Policy) { p.AllowDomains = []string{"com"} }, d: fail(dmarc.PolicyReject), action: ActionAccept, override: "local_policy"},
		{name: "allow domain is not a suffix match", pol: func(p *Policy) { p.AllowDomains = []string{"ample.com"} }, d: fail(dmarc.PolicyReject), action: ActionReject, reply: "550 5.7.1 "},
		{name: "allow domain in U-labels matches the A-labels", pol: func(p *Policy) { p.AllowDomains = []string{"Bücher.example"} }, d: &dmarc.Result{Status: verify.StatusFail, AuthorDomain: "mx.xn--bcher-kva.example", Disposition: dmarc.PolicyReject}, action: ActionAccept, override: "local_policy"},
		{name: "trusted sealer in U-labels", pol: func(p *Policy) { p.TrustedSealers = []string{"lists.bücher.example"} }, d: fail(dmarc.PolicyReject), a: &arc.Result{Status: verify.StatusPass, Instances: 1, Sets: []arc.Set{{Instance: 1, Domain: "lists.xn--bcher-kva.example", AAR: "x; dmarc=pass header.from=example.com", CV: "none", AMSValid: true}}}, action: ActionAccept, override: "trusted_forwarder"},
		{name: "trusted sealer overrides", d: fail(dmarc.PolicyReject), a: trustedChain, action: ActionAccept, override: "trusted_forwarder: ARC sealer lists.example.org"},
		{name: "untrusted sealer does not", d: fail(dmarc.PolicyReject), a: untrustedPass, action: ActionReject, reply: "550 5.7.1 "},
		{name: "broken chain does not", d: fail(dmarc.PolicyReject), a: brokenChain, action: ActionReject, reply: "550 5.7.1 "},
		{name: "trusted sealer's chain in temperror tempfails", d: fail(dmarc.PolicyReject), a: &arc.Result{Status: verify.StatusTemperror, Instances: 1, Sets: trustedChain.Sets}, action: ActionTempfail, reply: "451 4.7.1 ", override: "other: ARC chain of trusted sealer lists.example.org not validated"},
		{name: "trusted sealer's chain in temperror without dmarc=pass rejects", d: fail(dmarc.PolicyReject), a: &arc.Result{Status: verify.StatusTemperror, Instances: 1, Sets: []arc.Set{{Instance: 1, Domain: "lists.example.org", AAR: "lists.example.org; spf=pass smtp.mailfrom=example.com; dmarc=fail header.from=example.com", CV: "none"}}}, action: ActionReject, reply: "550 5.7.1 "},
		{name: "untrusted sealer's chain in temperror rejects", d: fail(dmarc.PolicyReject), a: &arc.Result{Status: verify.StatusTemperror, Instances: 1, Sets: untrustedPass.Sets}, action: ActionReject, reply: "550 5.7.1 "},
		{name: "chain temperror with temperror=accept falls back to the disposition", pol: func(p *Policy) { p.Temperror = TemperrorAccept }, d: fail(dmarc.PolicyReject), a: &arc.Result{Status: verify.StatusTemperror, Instances: 1, Sets: trustedChain.Sets}, action: ActionReject, reply: "550 5.7.1 "},
		{name: "trusted sealer does not lift temperror", d: &dmarc.Result{Status: verify.StatusTemperror}, a: trustedChain, action: ActionTempfail, reply: "451 ", override: "other: DMARC temperror"},
		{name: "t=y lowers reject to quarantine", d: reducedBy(dmarc.PolicyReject, dmarc.PolicyQuarantine, dmarc.ReducedTesting), action: ActionQuarantine, override: "policy_test_mode: t=y: reject lowered to quarantine"},
		{name: "t=y lowers quarantine to none", d: reducedBy(dmarc.PolicyQuarantine, dmarc.PolicyNone, dmarc.ReducedTesting), action: ActionAccept, override: "policy_test_mode: t=y: quarantine lowered to none"},
		{name: "pct sampled out", d: reducedBy(dmarc.PolicyReject, dmarc.PolicyQuarantine, dmarc.ReducedSampling), action: ActionQuarantine, override: "sampled_out: pct: reject lowered to quarantine"},
		{name: "local policy wins over t=y", pol: func(p *Policy) { p.AllowDomains = []string{"example.com"} }, d: reducedBy(dmarc.PolicyReject, dmarc.PolicyQuarantine, dmarc.ReducedTesting), action: ActionAccept, override: "local_policy: From domain example.com in policy.allow_domains"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			if tc.pol != nil {
				tc.pol(&p)
			}
			got := p.Decide(ip, tc.d, tc.a)
			if got.Action != tc.action || !strings.HasPrefix(got.Reply, tc.reply) || !strings.HasPrefix(got.Override.String(), tc.override) {
				t.Fatalf("Decide = %+v, want action %s reply %q… override %q…", got, tc.action, tc.reply, tc.override)
			}
			if tc.reply == "" && got.Reply != "" {
				t.Errorf("unexpected reply %q", got.Reply)
			}
			if tc.override == "" && !got.Override.IsZero() {
				t.Errorf("unexpected override %q", got.Override)
			}
		})
	}
}

func TestDecideReplyNamesDomainAndPolicy(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	got := p.Decide(netip.Addr{}, &dmarc.Result{Status: verify.StatusFail, AuthorDomain: "mail.example.com",
		PolicyDomain: "example.com", Policy: dmarc.PolicyReject, Disposition: dmarc.PolicyReject, Reason: "SPF and DKIM not aligned\r\nX-Injected: 1"}, nil)
	if !strings.Contains(got.Reply, "example.com") || !strings.Contains(got.Reply, "reject") {
		t.Errorf("reply %q does not name the domain and its policy", got.Reply)
	}
	if strings.ContainsAny(got.Reply, "\r\n") {
		t.Errorf("reply %q carries a line break", got.Reply)
	}
}

func TestInternal(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	for _, tc := range []struct {
		ip   string
		auth string
		want bool
	}{
		{"127.0.0.1", "", true},
		{"::1", "", true},
		{"::ffff:127.0.0.1", "", true},
		{"192.0.2.1", "", false},
		{"192.0.2.1", "alice", true},
	} {
		if got := p.Internal(netip.MustParseAddr(tc.ip), tc.auth); got != tc.want {
			t.Errorf("Internal(%s, %q) = %v", tc.ip, tc.auth, got)
		}
	}
	if p.Internal(netip.Addr{}, "") {
		t.Error("an unknown client address is not internal")
	}
}

func TestParseClientIP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		macro string
		want  string
	}{
		{"IPv6:2001:db8::1", "2001:db8::1"},
		{"[192.0.2.1]", "192.0.2.1"},
		{"192.0.2.1", "192.0.2.1"},
		{"", "invalid IP"},
		{"garbage", "invalid IP"},
	} {
		if got := parseClientIP("", tc.macro).String(); got != tc.want {
			t.Errorf("parseClientIP(\"\", %q) = %s, want %s", tc.macro, got, tc.want)
		}
	}
}
