package audit

import (
	"strings"
	"testing"
)

func TestMX(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, zone string
		want       Status
		detail     string
	}{
		{"present", "example.com. MX 10 mx1.example.com.\nexample.com. MX 20 mx2.example.net.\n", StatusPass, "mx1.example.com, mx2.example.net"},
		{"null MX", "example.com. MX 0 .\n", StatusInfo, "null MX (RFC 7505): this domain receives no mail"},
		{"null MX among others", "example.com. MX 0 .\nexample.com. MX 10 mx.example.com.\n", StatusFail, "null MX next to other MX records"},
		{"none", "example.com. TXT \"v=spf1 -all\"\n", StatusWarn, "no MX records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := auditZone(t, "example.com", tc.zone, nil)
			expect(t, rep, "mx", tc.want)
			expectDetail(t, rep, "mx", tc.want, tc.detail)
		})
	}
	r := failing{loadZone(t, "example.com. MX 10 mx.example.com.\n"), map[string]bool{"example.com": true}}
	rep := auditZone(t, "example.com", "", &Options{Resolver: r})
	expectDetail(t, rep, "mx", StatusWarn, "could not be checked")
}

func TestTLSRPT(t *testing.T) {
	t.Parallel()
	const name = "_smtp._tls.example.com. TXT "
	for _, tc := range []struct {
		name, zone string
		want       Status
		detail     string
	}{
		{"mailto", name + `"v=TLSRPTv1; rua=mailto:tls@example.com"`, StatusPass, "rua mailto:tls@example.com"},
		{"mailto and https", name + `"v=TLSRPTv1;rua=mailto:tls@example.com,https://r.example.net/tls"`, StatusPass, "https://r.example.net/tls"},
		{"absent", "example.com. TXT \"v=spf1 -all\"", StatusInfo, "no TLS-RPT record"},
		{"not TLS-RPT", name + `"v=spf1 -all"`, StatusInfo, "no v=TLSRPTv1 record"},
		{"no rua", name + `"v=TLSRPTv1"`, StatusFail, "no rua="},
		{"http URI", name + `"v=TLSRPTv1; rua=http://r.example.net/tls"`, StatusFail, "want a mailto: or https: URI"},
		{"mailto without address", name + `"v=TLSRPTv1; rua=mailto:tls"`, StatusFail, "not a mail address"},
		{"two records", name + `"v=TLSRPTv1; rua=mailto:a@example.com"` + "\n" + name + `"v=TLSRPTv1; rua=mailto:b@example.com"`, StatusFail, "2 v=TLSRPTv1 records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := auditZone(t, "example.com", tc.zone+"\n", nil)
			expect(t, rep, "tls_rpt", tc.want)
			expectDetail(t, rep, "tls_rpt", tc.want, tc.detail)
		})
	}
}

func TestBIMI(t *testing.T) {
	t.Parallel()
	const (
		name   = "default._bimi.example.com. TXT "
		good   = `"v=BIMI1; l=https://example.com/logo.svg; a=https://example.com/vmc.pem"`
		reject = `_dmarc.example.com. TXT "v=DMARC1; p=reject"`
	)
	for _, tc := range []struct {
		name   string
		zone   []string
		want   Status
		detail string
	}{
		{"good", []string{name + good, reject}, StatusPass, "l=https://example.com/logo.svg"},
		{"quarantine", []string{name + good, `_dmarc.example.com. TXT "v=DMARC1; p=quarantine"`}, StatusPass, "l=https://example.com/logo.svg"},
		{"absent", []string{reject}, StatusInfo, "no BIMI record"},
		{"DMARC p=none", []string{name + good, `_dmarc.example.com. TXT "v=DMARC1; p=none"`}, StatusFail, "DMARC p=none is not at enforcement"},
		{"DMARC pct", []string{name + good, `_dmarc.example.com. TXT "v=DMARC1; p=reject; pct=50"`}, StatusFail, "pct=50"},
		{"DMARC t=y", []string{name + good, `_dmarc.example.com. TXT "v=DMARC1; p=reject; t=y"`}, StatusFail, "t=y"},
		{"no DMARC", []string{name + good}, StatusFail, "no DMARC policy"},
		{"http logo", []string{name + `"v=BIMI1; l=http://example.com/logo.svg"`, reject}, StatusFail, "not an https URI"},
		{"PNG logo", []string{name + `"v=BIMI1; l=https://example.com/logo.png; a=https://example.com/vmc.pem"`, reject}, StatusFail, "not an SVG file"},
		{"no a=", []string{name + `"v=BIMI1; l=https://example.com/logo.svg"`, reject}, StatusWarn, "no a="},
		{"declined", []string{name + `"v=BIMI1; l=;"`, reject}, StatusInfo, "declines"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := auditZone(t, "example.com", strings.Join(tc.zone, "\n")+"\n", nil)
			expect(t, rep, "bimi", tc.want)
			expectDetail(t, rep, "bimi", tc.want, tc.detail)
		})
	}
}

// Every check of the issue appears, in a fixed order, and a bad domain is
// a failed check, not a panic.
func TestReportShape(t *testing.T) {
	t.Parallel()
	rep := auditZone(t, "Example.COM.", "example.com. TXT \"v=spf1 -all\"\n", &Options{Selectors: []string{"s"}})
	if rep.Domain != "example.com" {
		t.Errorf("Domain = %q", rep.Domain)
	}
	var ids []string
	for _, c := range rep.Checks {
		if len(ids) == 0 || ids[len(ids)-1] != c.ID {
			ids = append(ids, c.ID)
		}
	}
	want := "spf.record spf.lookups spf.all spf.ptr dmarc.record dkim.key mx mta_sts tls_rpt bimi"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("ids %s\nwant %s", got, want)
	}
	for _, bad := range []string{"", "localhost", "exa mple.com", "a..example", "-a.example", "a@example.com", "a/b.example", strings.Repeat("a", 64) + ".example"} {
		rep := auditZone(t, bad, "example.com. TXT \"v=spf1 -all\"\n", nil)
		if !rep.Failed() || len(rep.Checks) != 1 || rep.Checks[0].ID != "domain" {
			t.Errorf("%q: %+v", bad, rep)
		}
	}
}
