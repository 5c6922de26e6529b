package audit

import (
	"fmt"
	"strings"
	"testing"
)

// spfZone is a zone with rec as example.com's SPF record and extra lines.
func spfZone(rec string, extra ...string) string {
	return "example.com. TXT " + txt(rec) + "\n" + strings.Join(extra, "\n") + "\n"
}

// lookupZone gives example.com a tree of n DNS-querying terms, counted
// through an include and a redirect: the top record has include and
// redirect (2), the include has 4 a: terms, the redirect target n-6.
func lookupZone(n int) string {
	var inc, red []string
	var hosts []string
	for i := 1; i <= n-2; i++ {
		term := fmt.Sprintf("a:h%d.example.com", i)
		hosts = append(hosts, fmt.Sprintf("h%d.example.com. A 192.0.2.%d", i, i))
		if i <= 4 {
			inc = append(inc, term)
		} else {
			red = append(red, term)
		}
	}
	return spfZone("v=spf1 include:_i.example.com redirect=_r.example.com",
		append(hosts,
			"_i.example.com. TXT "+txt("v=spf1 "+strings.Join(inc, " ")+" ~all"),
			"_r.example.com. TXT "+txt("v=spf1 "+strings.Join(red, " ")+" -all"))...)
}

func TestSPF(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, zone string
		id         string
		want       Status
		detail     string
	}{
		{"no record", "example.com. TXT \"other\"\n", "spf.record", StatusFail, "no v=spf1 record"},
		{"two records", spfZone("v=spf1 -all", `example.com. TXT "v=spf1 mx -all"`), "spf.record", StatusFail, "more than one"},
		{"syntax error quoted with position", spfZone("v=spf1 mx foo:bar -all"), "spf.record", StatusFail, `at column 11 ("foo:bar")`},
		{"one record", spfZone("v=spf1 ip4:192.0.2.0/24 -all"), "spf.record", StatusPass, `"v=spf1 ip4:192.0.2.0/24 -all"`},
		{"include without record", spfZone("v=spf1 include:none.example.com -all"), "spf.record", StatusFail, "include:none.example.com"},
		{"10 lookups", lookupZone(10), "spf.lookups", StatusPass, "10 DNS-querying terms"},
		{"11 lookups", lookupZone(11), "spf.lookups", StatusFail, "11 DNS-querying terms, over the limit of 10"},
		{"2 void lookups", spfZone("v=spf1 a:v1.example.com mx:v2.example.com -all"), "spf.lookups", StatusWarn, "2 void lookups"},
		{"3 void lookups", spfZone("v=spf1 a:v1.example.com mx:v2.example.com exists:v3.example.com -all"), "spf.lookups", StatusFail, "3 void lookups, over the limit of 2"},
		{"macro terms not queried", spfZone("v=spf1 exists:%{i}._ip.example.com -all"), "spf.lookups", StatusPass, "exists:%{i}._ip.example.com"},
		{"-all", spfZone("v=spf1 mx -all", "example.com. MX 10 mx.example.com."), "spf.all", StatusPass, "-all"},
		{"~all", spfZone("v=spf1 ~all"), "spf.all", StatusPass, "~all"},
		{"?all", spfZone("v=spf1 ?all"), "spf.all", StatusWarn, "neutral"},
		{"+all", spfZone("v=spf1 +all"), "spf.all", StatusFail, "every host"},
		{"bare all", spfZone("v=spf1 all"), "spf.all", StatusFail, "every host"},
		{"no all", spfZone("v=spf1 ip4:192.0.2.1"), "spf.all", StatusWarn, "no all"},
		{"all through redirect", lookupZone(3), "spf.all", StatusPass, "-all (from the redirect to _r.example.com)"},
		{"redirect ignored after all", spfZone("v=spf1 -all redirect=_r.example.com"), "spf.lookups", StatusPass, "0 DNS-querying terms"},
		{"include loop", spfZone("v=spf1 include:_i.example.com -all", `_i.example.com. TXT "v=spf1 include:example.com ~all"`), "spf.lookups", StatusFail, "leads back to example.com, a loop"},
		{"ptr", spfZone("v=spf1 ptr -all"), "spf.ptr", StatusWarn, "example.com: ptr"},
		{"ptr in an include", spfZone("v=spf1 include:_i.example.com -all", `_i.example.com. TXT "v=spf1 ptr:example.org ~all"`), "spf.ptr", StatusWarn, "_i.example.com: ptr:example.org"},
		{"no ptr", spfZone("v=spf1 -all"), "spf.ptr", StatusPass, "no ptr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := auditZone(t, "example.com", tc.zone, nil)
			expect(t, rep, tc.id, tc.want)
			expectDetail(t, rep, tc.id, tc.want, tc.detail)
		})
	}
}

// A temporary failure is "could not be checked", never a missing record.
func TestSPFTemporaryFailure(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"example.com", "_i.example.com"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := failing{loadZone(t, spfZone("v=spf1 include:_i.example.com -all", `_i.example.com. TXT "v=spf1 -all"`)), map[string]bool{name: true}}
			rep := auditZone(t, "example.com", "", &Options{Resolver: r})
			expect(t, rep, "spf.record", StatusWarn)
			expectDetail(t, rep, "spf.record", StatusWarn, "could not be checked")
		})
	}
}
