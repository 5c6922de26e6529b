package main

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	msgauthdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/authmilter/authmilter/dnscache/dnstest"
)

// Issue #17 through `authmilter check`, as a user would try it: the victim's
// domain comes from a zone file, the attacker's names from a DNS server
// (dnstest) that fails them, by SERVFAIL, by never answering, or not at
// all (NXDOMAIN).

// spoofFixture writes the zone file of victim.example and a message From
// ceo@victim.example, signed by attacker.example and by mail.victim.example
// with one key, and returns the zone path, the public key record and the
// message paths (unsigned, signed by the attacker, signed by the victim's
// subdomain).
func spoofFixture(t *testing.T) (zone, pub string, msgs map[string]string) {
	t.Helper()
	dir := t.TempDir()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	zone = filepath.Join(dir, "victim.zone")
	zoneText := `$ORIGIN victim.example.
$TTL 300
@                   SOA   ns hostmaster 1 3600 600 86400 300
@                   TXT   "v=spf1 ip4:192.0.2.0/24 -all"
@                   A     192.0.2.1
_dmarc              TXT   "v=DMARC1; p=reject"
sel._domainkey.mail TXT   "` + pub + `"
`
	if err := os.WriteFile(zone, []byte(zoneText), 0o644); err != nil {
		t.Fatal(err)
	}
	msg := "From: CEO <ceo@victim.example>\r\nTo: bob@example.net\r\nSubject: wire the money\r\n\r\nNow.\r\n"
	msgs = map[string]string{"": filepath.Join(dir, "unsigned.eml")}
	if err := os.WriteFile(msgs[""], []byte(msg), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"attacker.example", "mail.victim.example"} {
		var out bytes.Buffer
		if err := msgauthdkim.Sign(&out, strings.NewReader(msg), &msgauthdkim.SignOptions{
			Domain: d, Selector: "sel", Signer: crypto.Signer(key), HeaderKeys: []string{"From", "To", "Subject"},
		}); err != nil {
			t.Fatal(err)
		}
		msgs[d] = filepath.Join(dir, d+".eml")
		if err := os.WriteFile(msgs[d], out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return zone, pub, msgs
}

// checkVerdict is the part of check's JSON these tests read.
type checkVerdict struct {
	SPF struct {
		Result string `json:"result"`
	} `json:"spf"`
	DKIM []struct {
		Result, Domain string
	} `json:"dkim"`
	DMARC struct {
		Result       string `json:"result"`
		Reason       string `json:"reason"`
		WalksSkipped int    `json:"walks_skipped"`
	} `json:"dmarc"`
	Action string `json:"action"`
	Reply  string `json:"reply"`
}

func runSpoofCheck(t *testing.T, cfg, mailFrom, file string) checkVerdict {
	t.Helper()
	code, out, errOut := runCmd("check", "--config", cfg, "--client-ip", "198.51.100.7",
		"--helo", "mail.attacker.example", "--mail-from", mailFrom, "--rcpt", "bob@example.net", "--format", "json", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var v checkVerdict
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return v
}

func spoofConfig(t *testing.T, zone, server, temperror string) string {
	t.Helper()
	return writeConfig(t, "authserv_id: mx.check.test\n"+
		"dns: {servers: [\""+server+"\"], zone_file: \""+zone+"\", timeout: 300ms, attempts: 1}\n"+
		"policy: {temperror: "+temperror+"}\n")
}

// TestCheckSpoofersDNSCannotDecide: the six runs of issue #17 under both
// policy.temperror settings: always dmarc=fail and 550, and the attacker's
// _dmarc name is never asked.
func TestCheckSpoofersDNSCannotDecide(t *testing.T) {
	t.Parallel()
	zone, pub, msgs := spoofFixture(t)
	vectors := []struct {
		name, mailFrom, signer, spf string
	}{
		{"SPF temperror", "x@attacker.example", "", "temperror"},
		{"attacker DKIM pass", "x@bounces.attacker.example", "attacker.example", "fail"},
	}
	ways := map[string]dnstest.Failure{"SERVFAIL": dnstest.ServFail, "timeout": dnstest.Timeout, "NXDOMAIN": 0}
	for _, vec := range vectors {
		for wn, f := range ways {
			for _, mode := range []string{"tempfail", "accept"} {
				t.Run(vec.name+"/"+wn+"/"+mode, func(t *testing.T) {
					t.Parallel()
					attacker := &dnstest.Resolver{
						TXT: map[string][]string{
							"sel._domainkey.attacker.example": {pub},
							"bounces.attacker.example":        {"v=spf1 -all"},
						},
						Fail: map[string]dnstest.Failure{"attacker.example/TXT": dnstest.ServFail},
					}
					if f != 0 {
						attacker.Fail["_dmarc.attacker.example"] = f
					}
					cfg := spoofConfig(t, zone, dnstest.Serve(t, attacker), mode)
					v := runSpoofCheck(t, cfg, vec.mailFrom, msgs[vec.signer])
					if v.SPF.Result != vec.spf {
						t.Fatalf("spf %s, want %s", v.SPF.Result, vec.spf)
					}
					if vec.signer != "" && (len(v.DKIM) != 1 || v.DKIM[0].Result != "pass") {
						t.Fatalf("dkim %+v, want pass", v.DKIM)
					}
					if v.DMARC.Result != "fail" || v.Action != "reject" || !strings.HasPrefix(v.Reply, "550 5.7.1") {
						t.Fatalf("dmarc %s (%s), action %s %q: want fail, reject, 550", v.DMARC.Result, v.DMARC.Reason, v.Action, v.Reply)
					}
					if v.DMARC.WalksSkipped != 1 {
						t.Errorf("walks_skipped %d, want 1", v.DMARC.WalksSkipped)
					}
					for _, q := range attacker.Queries() {
						if strings.Contains(q, "_dmarc.") && strings.Contains(q, "attacker") {
							t.Errorf("asked %s", q)
						}
					}
				})
			}
		}
	}
}

// TestCheckOwnDNSStillTemperror: a failing walk from d=mail.victim.example,
// or the Author Domain's own _dmarc failing, still gives temperror (here
// from the DNS server, the zone file then carrying only the DKIM key).
func TestCheckOwnDNSStillTemperror(t *testing.T) {
	t.Parallel()
	_, pub, msgs := spoofFixture(t)
	tests := []struct {
		name, fail, signer string
	}{
		{"walk from d=mail.victim.example fails", "_dmarc.mail.victim.example", "mail.victim.example"},
		{"the Author Domain's own _dmarc fails", "_dmarc.victim.example", "attacker.example"},
	}
	for _, tc := range tests {
		for _, mode := range []string{"tempfail", "accept"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				r := &dnstest.Resolver{
					TXT: map[string][]string{
						"victim.example":                     {"v=spf1 ip4:192.0.2.0/24 -all"},
						"_dmarc.victim.example":              {"v=DMARC1; p=reject"},
						"sel._domainkey.mail.victim.example": {pub},
						"sel._domainkey.attacker.example":    {pub},
						"bounces.attacker.example":           {"v=spf1 -all"},
					},
					Fail: map[string]dnstest.Failure{tc.fail: dnstest.ServFail},
				}
				cfg := writeConfig(t, "authserv_id: mx.check.test\n"+
					"dns: {servers: [\""+dnstest.Serve(t, r)+"\"], timeout: 300ms, attempts: 1}\n"+
					"policy: {temperror: "+mode+"}\n")
				v := runSpoofCheck(t, cfg, "x@bounces.attacker.example", msgs[tc.signer])
				if v.DMARC.Result != "temperror" {
					t.Fatalf("dmarc %s (%s), want temperror", v.DMARC.Result, v.DMARC.Reason)
				}
				wantAction, wantReply := "tempfail", "451 4.7.1"
				if mode == "accept" {
					wantAction, wantReply = "accept", ""
				}
				if v.Action != wantAction || !strings.HasPrefix(v.Reply, wantReply) {
					t.Errorf("action %s %q, want %s %q", v.Action, v.Reply, wantAction, wantReply)
				}
			})
		}
	}
}
