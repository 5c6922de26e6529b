package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"testing"
)

func TestDKIMKey(t *testing.T) {
	t.Parallel()
	_, rsa1024 := rsaRecord(t, 1024)
	_, rsa2048 := rsaRecord(t, 2048)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	ed := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	const name = "s1._domainkey.example.com. TXT "
	for _, tc := range []struct {
		name, zone string
		want       Status
		detail     string
	}{
		{"missing", "example.com. TXT \"v=spf1 -all\"\n", StatusFail, "no key record at s1._domainkey.example.com"},
		{"RSA 1024", name + txt(rsa1024), StatusWarn, "k=rsa, 1024 bits: under the recommended 2048 bits"},
		{"RSA 2048", name + txt(rsa2048), StatusPass, "k=rsa, 2048 bits"},
		{"Ed25519", name + txt(ed), StatusPass, "k=ed25519"},
		{"t=y noted", name + txt(rsa2048+"; t=y"), StatusWarn, "t=y (testing"},
		{"revoked", name + `"v=DKIM1; k=rsa; p="`, StatusInfo, "key revoked (empty p="},
		{"bad base64", name + `"v=DKIM1; k=rsa; p=!!!"`, StatusFail, "not base64"},
		{"unknown k=", name + `"v=DKIM1; k=dsa; p=AAAA"`, StatusFail, "k=dsa"},
		{"no key record", name + `"hello"`, StatusFail, "no key record"},
		{"two key records", name + txt(rsa2048) + "\n" + name + txt(ed), StatusWarn, "2 key records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := auditZone(t, "example.com", tc.zone+"\n", &Options{Selectors: []string{"s1"}})
			expect(t, rep, "dkim.key", tc.want)
			expectDetail(t, rep, "dkim.key", tc.want, tc.detail)
		})
	}
}

// RSA keys under 1024 bits fail (RFC 8301 §3.2); the test binary may
// generate one (go:debug rsa1024min=0 in keys_test.go).
func TestDKIMKeyTooSmall(t *testing.T) {
	t.Parallel()
	_, rsa512 := rsaRecord(t, 512)
	rep := auditZone(t, "example.com", "s1._domainkey.example.com. TXT "+txt(rsa512)+"\n", &Options{Selectors: []string{"s1"}})
	expect(t, rep, "dkim.key", StatusFail)
	expectDetail(t, rep, "dkim.key", StatusFail, "512 bits")
}

func TestDKIMNoSelector(t *testing.T) {
	t.Parallel()
	rep := auditZone(t, "example.com", "example.com. TXT \"v=spf1 -all\"\n", nil)
	expect(t, rep, "dkim.key", StatusInfo)
	if _, ok := rep.Worst("dkim.key_match"); ok {
		t.Error("dkim.key_match without configured keys")
	}
}

// dkim.key_match compares each configured key of the domain with the
// published one; the configured key's selector is checked as well.
func TestDKIMKeyMatch(t *testing.T) {
	t.Parallel()
	k1, rec1 := rsaRecord(t, 2048)
	k2, _ := rsaRecord(t, 2048)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	zone := "arc._domainkey.example.com. TXT " + txt(rec1) + "\n" +
		"ed._domainkey.example.com. TXT " + txt("v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub)) + "\n"
	for _, tc := range []struct {
		name   string
		key    Key
		want   Status
		detail string
	}{
		{"same key", Key{Domain: "example.com", Selector: "arc", Public: &k1.PublicKey, Source: "arc.seal"}, StatusPass, "publishes the public key of arc.seal"},
		{"other key", Key{Domain: "example.com", Selector: "arc", Public: &k2.PublicKey, Source: "arc.seal"}, StatusFail, "not the public key of arc.seal"},
		{"other algorithm", Key{Domain: "example.com", Selector: "ed", Public: &k1.PublicKey, Source: "arc.seal"}, StatusFail, "not the public key"},
		{"Ed25519", Key{Domain: "EXAMPLE.COM.", Selector: "ed", Public: pub, Source: "signing"}, StatusPass, "publishes the public key of signing"},
		{"not published", Key{Domain: "example.com", Selector: "gone", Public: &k1.PublicKey, Source: "signing"}, StatusFail, "no usable published key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := auditZone(t, "example.com", zone, &Options{Keys: []Key{tc.key}})
			expect(t, rep, "dkim.key_match", tc.want)
			expectDetail(t, rep, "dkim.key_match", tc.want, tc.detail)
			if _, ok := rep.Worst("dkim.key"); !ok {
				t.Error("the configured key's selector was not checked (dkim.key)")
			}
		})
	}
	// A key of another domain is not this domain's business.
	rep := auditZone(t, "example.com", zone, &Options{Keys: []Key{{Domain: "example.org", Selector: "arc", Public: &k1.PublicKey}}})
	if _, ok := rep.Worst("dkim.key_match"); ok {
		t.Errorf("dkim.key_match for another domain's key:\n%s", dump(rep))
	}
}

func TestDKIMTemporaryFailure(t *testing.T) {
	t.Parallel()
	r := failing{loadZone(t, "example.com. TXT \"v=spf1 -all\"\n"), map[string]bool{"s1._domainkey.example.com": true}}
	rep := auditZone(t, "example.com", "", &Options{Resolver: r, Selectors: []string{"s1"}})
	expect(t, rep, "dkim.key", StatusWarn)
	expectDetail(t, rep, "dkim.key", StatusWarn, "could not be checked")
}
