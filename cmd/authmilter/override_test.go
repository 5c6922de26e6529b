package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCheckOverride: `check` shows the override in the same words as the
// Authentication-Results comment, in JSON and in text.
func TestCheckOverride(t *testing.T) {
	t.Parallel()
	zone, _, unsigned := checkFixture(t)
	cfg := writeConfig(t, "authserv_id: mx.check.test\npolicy:\n  allow_networks: [198.51.100.0/24]\n")
	const want = "local_policy: client 198.51.100.7 in policy.allow_networks"
	code, out, errOut := runCmd("check", "--config", cfg, "--zone", zone, "--client-ip", "198.51.100.7",
		"--helo", "mail.example.net", "--mail-from", "alice@example.com", "--format", "json", unsigned)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Action       string `json:"action"`
		Override     string `json:"override"`
		OverrideType string `json:"override_type"`
		AR           string `json:"authentication_results"`
		IPRev        struct {
			Result, IP string
		} `json:"iprev"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Action != "accept" || rep.Override != want || rep.OverrideType != "local_policy" {
		t.Fatalf("action %s override %q type %q", rep.Action, rep.Override, rep.OverrideType)
	}
	// policy.iprev: header by default; the zone has no reverse data.
	if rep.IPRev.IP != "198.51.100.7" || rep.IPRev.Result == "" || !strings.Contains(rep.AR, "iprev="+rep.IPRev.Result) {
		t.Errorf("iprev %+v, A-R %s", rep.IPRev, rep.AR)
	}
	if !strings.Contains(strings.ReplaceAll(rep.AR, "\r\n\t", " "), "override "+want+")") {
		t.Errorf("A-R lacks the override:\n%s", rep.AR)
	}
	code, out, errOut = runCmd("check", "--config", cfg, "--zone", zone, "--client-ip", "198.51.100.7",
		"--helo", "mail.example.net", "--mail-from", "alice@example.com", unsigned)
	if code != 0 || !strings.Contains(out, "override: "+want+"\n") {
		t.Errorf("text output (exit %d, %s):\n%s", code, errOut, out)
	}
}
