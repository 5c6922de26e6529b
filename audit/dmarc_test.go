package audit

import "testing"

func TestDMARC(t *testing.T) {
	t.Parallel()
	const rec = "_dmarc.example.com. TXT "
	for _, tc := range []struct {
		name, domain, zone string
		id                 string
		want               Status
		detail             string
	}{
		{"no record", "example.com", "example.com. TXT \"v=spf1 -all\"\n", "dmarc.record", StatusFail, "no DMARC record at _dmarc.example.com"},
		{"not a DMARC record", "example.com", rec + `"v=DMARC1 p=reject"` + "\n", "dmarc.record", StatusFail, `does not start with v=DMARC1`},
		{"two records", "example.com", rec + `"v=DMARC1; p=reject"` + "\n" + rec + `"v=DMARC1; p=none"` + "\n", "dmarc.record", StatusFail, "several v=DMARC1 records"},
		{"own record", "example.com", rec + `"v=DMARC1; p=reject; rua=mailto:d@example.com"` + "\n", "dmarc.record", StatusPass, "at _dmarc.example.com"},
		{"inherited through the tree walk", "a.b.example.com", rec + `"v=DMARC1; p=reject; sp=quarantine"` + "\na.b.example.com. A 192.0.2.1\n",
			"dmarc.record", StatusPass, "inherited from _dmarc.example.com through the RFC 9989 §4.10 tree walk"},
		{"inherited sp applies", "a.b.example.com", rec + `"v=DMARC1; p=reject; sp=none"` + "\na.b.example.com. A 192.0.2.1\n",
			"dmarc.policy", StatusWarn, "sp=none: monitoring only"},
		{"inherited p applies without sp", "a.b.example.com", rec + `"v=DMARC1; p=reject"` + "\na.b.example.com. A 192.0.2.1\n",
			"dmarc.policy", StatusPass, "p=reject"},
		{"unknown tag quoted", "example.com", rec + `"v=DMARC1; p=reject; foo=bar"` + "\n", "dmarc.record", StatusWarn, `"foo=bar"`},
		{"malformed tag quoted", "example.com", rec + `"v=DMARC1; p=reject; adkim=x"` + "\n", "dmarc.record", StatusWarn, "adkim=x"},
		{"p=none", "example.com", rec + `"v=DMARC1; p=none"` + "\n", "dmarc.policy", StatusWarn, "p=none: monitoring only"},
		{"p=quarantine", "example.com", rec + `"v=DMARC1; p=quarantine"` + "\n", "dmarc.policy", StatusPass, "p=quarantine"},
		{"p=reject with sp and np", "example.com", rec + `"v=DMARC1; p=reject; sp=quarantine; np=reject"` + "\n", "dmarc.policy", StatusPass, "p=reject, sp=quarantine, np=reject"},
		{"np=none", "example.com", rec + `"v=DMARC1; p=reject; np=none"` + "\n", "dmarc.policy", StatusWarn, "subdomains are only monitored"},
		{"t=y", "example.com", rec + `"v=DMARC1; p=reject; t=y"` + "\n", "dmarc.policy", StatusWarn, "t=y"},
		{"no valid p, no rua", "example.com", rec + `"v=DMARC1; p=bogus"` + "\n", "dmarc.policy", StatusFail, "no valid p="},
		{"no p, valid rua", "example.com", rec + `"v=DMARC1; rua=mailto:d@example.com"` + "\n", "dmarc.policy", StatusWarn, "taken as none"},
		{"pct", "example.com", rec + `"v=DMARC1; p=reject; pct=50"` + "\n", "dmarc.deprecated", StatusWarn, "pct=50"},
		{"pct=100 still reported", "example.com", rec + `"v=DMARC1; p=reject; pct=100"` + "\n", "dmarc.deprecated", StatusWarn, "pct=100"},
		{"rf and ri", "example.com", rec + `"v=DMARC1; p=reject; rf=afrf; ri=3600"` + "\n", "dmarc.deprecated", StatusWarn, "ri=3600"},
		{"none deprecated", "example.com", rec + `"v=DMARC1; p=reject"` + "\n", "dmarc.deprecated", StatusPass, "no pct, rf or ri"},
		{"no rua", "example.com", rec + `"v=DMARC1; p=reject"` + "\n", "dmarc.rua", StatusWarn, "no rua="},
		{"rua in the domain", "example.com", rec + `"v=DMARC1; p=reject; rua=mailto:d@example.com"` + "\n", "dmarc.rua", StatusPass, "within the organizational domain example.com"},
		{"rua in a subdomain", "example.com", rec + `"v=DMARC1; p=reject; rua=mailto:d@reports.example.com"` + "\n", "dmarc.rua", StatusPass, "within the organizational domain example.com"},
		{"rua at a sibling domain, unauthorized", "example.com", rec + `"v=DMARC1; p=reject; rua=mailto:d@example.net"` + "\n",
			"dmarc.rua", StatusFail, "example.com._report._dmarc.example.net has no v=DMARC1 record"},
		{"rua at a sibling domain, authorized", "example.com", rec + `"v=DMARC1; p=reject; rua=mailto:d@example.net"` + "\n" +
			`example.com._report._dmarc.example.net. TXT "v=DMARC1"` + "\n",
			"dmarc.rua", StatusPass, "authorized by example.com._report._dmarc.example.net"},
		{"rua authorization is not DMARC", "example.com", rec + `"v=DMARC1; p=reject; rua=mailto:d@example.net"` + "\n" +
			`example.com._report._dmarc.example.net. TXT "v=spf1 -all"` + "\n",
			"dmarc.rua", StatusFail, "has no v=DMARC1 record"},
		{"one of two rua unauthorized", "example.com", rec + `"v=DMARC1; p=reject; rua=mailto:d@example.com,mailto:x@example.org"` + "\n",
			"dmarc.rua", StatusFail, "mailto:x@example.org is outside"},
		{"rua not mailto", "example.com", rec + `"v=DMARC1; p=reject; rua=https://example.com/r"` + "\n", "dmarc.rua", StatusWarn, "not a mailto: URI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := auditZone(t, tc.domain, tc.zone, nil)
			expect(t, rep, tc.id, tc.want)
			expectDetail(t, rep, tc.id, tc.want, tc.detail)
		})
	}
}

// An inherited record's authorization is looked up for the Policy Domain
// (RFC 9990: "the domain name from which the policy was retrieved").
func TestDMARCRUAInheritedAuthorization(t *testing.T) {
	t.Parallel()
	zone := `_dmarc.example.com. TXT "v=DMARC1; p=reject; rua=mailto:d@example.net"
a.example.com. A 192.0.2.1
example.com._report._dmarc.example.net. TXT "v=DMARC1"
`
	rep := auditZone(t, "a.example.com", zone, nil)
	expectDetail(t, rep, "dmarc.rua", StatusPass, "authorized by example.com._report._dmarc.example.net")
}

func TestDMARCTemporaryFailure(t *testing.T) {
	t.Parallel()
	r := failing{loadZone(t, `_dmarc.example.com. TXT "v=DMARC1; p=reject; rua=mailto:d@example.net"`+"\n"), map[string]bool{"_dmarc.example.com": true}}
	rep := auditZone(t, "example.com", "", &Options{Resolver: r})
	expect(t, rep, "dmarc.record", StatusWarn)
	expectDetail(t, rep, "dmarc.record", StatusWarn, "could not be checked")

	r = failing{loadZone(t, `_dmarc.example.com. TXT "v=DMARC1; p=reject; rua=mailto:d@example.net"`+"\n"), map[string]bool{"example.com._report._dmarc.example.net": true}}
	rep = auditZone(t, "example.com", "", &Options{Resolver: r})
	expect(t, rep, "dmarc.rua", StatusWarn)
	expectDetail(t, rep, "dmarc.rua", StatusWarn, "could not be checked")
}
