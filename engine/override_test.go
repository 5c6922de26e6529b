package engine

import (
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/syncbuf"
	"github.com/authmilter/authmilter/verify"
)

// unfoldAR joins a folded Authentication-Results value back into one line
// (Format folds between words only).
func unfoldAR(s string) string { return strings.ReplaceAll(s, "\r\n\t", " ") }

// logRecord returns the one JSON log line of a message.
func logRecord(t *testing.T, buf *syncbuf.Buffer) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
		t.Fatalf("log line %q: %v", lines[len(lines)-1], err)
	}
	return rec
}

// TestOverrideSameWordsEverywhere: the override that Decide produced is
// the one in the Verdict, in the A-R policy.dmarc comment and in the log
// line, word for word.
func TestOverrideSameWordsEverywhere(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.dns.TXT["testing.example"] = []string{"v=spf1 -all"}
	w.dns.TXT["_dmarc.testing.example"] = []string{"v=DMARC1; p=reject; t=y"}
	w.dns.TXT["sampled.example"] = []string{"v=spf1 -all"}
	w.dns.TXT["_dmarc.sampled.example"] = []string{"v=DMARC1; p=reject; pct=0"}
	signed := w.sign(t, "example.com", "sel", msgText("example.com", "", "Hello.\r\n"))
	changed := strings.Replace(signed, "Hello.\r\n", "Hello.\r\n-- \r\nlist footer\r\n", 1)
	relayed := w.seal(t, changed, "spf=pass smtp.mailfrom=alice@example.com; dmarc=pass header.from=example.com")

	for _, tc := range []struct {
		name     string
		mod      func(*Engine)
		env      Envelope
		msg      string
		action   Action
		override string
	}{
		{"trusted forwarder", func(e *Engine) { e.Policy.TrustedSealers = []string{"forwarder.test"} },
			env("198.51.100.7", "mail.forwarder.test", "list@mail.forwarder.test"), relayed,
			ActionAccept, "trusted_forwarder: ARC sealer forwarder.test reported dmarc=pass"},
		{"allow network", func(e *Engine) { e.Policy.AllowNetworks = prefixList("198.51.100.0/24") },
			env("198.51.100.7", "x.example", "a@testing.example"), msgText("example.com", "", "Hi.\r\n"),
			ActionAccept, "local_policy: client 198.51.100.7 in policy.allow_networks"},
		{"t=y", nil, env("198.51.100.7", "x.example", "a@testing.example"), msgText("testing.example", "", "Hi.\r\n"),
			ActionQuarantine, "policy_test_mode: t=y: reject lowered to quarantine"},
		{"pct=0 (RFC 7489 mode)", nil, env("198.51.100.7", "x.example", "a@sampled.example"), msgText("sampled.example", "", "Hi.\r\n"),
			ActionQuarantine, "sampled_out: pct: reject lowered to quarantine"},
		{"temperror accepted", func(e *Engine) { e.Policy.Temperror = TemperrorAccept },
			env("198.51.100.7", "x.example", "a@tempfail.example"), msgText("tempfail.example", "", "Hi.\r\n"),
			ActionAccept, "local_policy: DMARC temperror accepted, policy.temperror: accept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf syncbuf.Buffer
			e := w.engine(func(e *Engine) { e.Logger = slog.New(slog.NewJSONHandler(&buf, nil)) })
			if tc.mod != nil {
				tc.mod(e)
			}
			v, _, _ := run(t, e, tc.env, tc.msg)
			if v.Action != tc.action || v.Override.String() != tc.override {
				t.Fatalf("action %s override %q, want %s %q (A-R %s)", v.Action, v.Override, tc.action, tc.override, v.AuthResults)
			}
			if !strings.Contains(unfoldAR(v.AuthResults), "override "+tc.override+")") {
				t.Errorf("A-R lacks the override %q:\n%s", tc.override, v.AuthResults)
			}
			if got := logRecord(t, &buf)["override"]; got != tc.override {
				t.Errorf("log override = %v, want %q", got, tc.override)
			}
			if v.Action == ActionQuarantine && !strings.Contains(v.QuarantineReason, tc.override) {
				t.Errorf("quarantine reason %q lacks the override", v.QuarantineReason)
			}
		})
	}
}

// TestPublicReasons: reasons in Authentication-Results and SMTP replies
// name what failed in the sender's terms, never our resolver, our zone
// file's path or a Go error chain; the log line keeps the detail.
func TestPublicReasons(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "local.zone")
	zoneText := "$ORIGIN example.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 300\n" +
		"sender.example. IN TXT \"v=spf1 include:missing.example -all\"\n" +
		"_dmarc.sender.example. IN TXT \"v=DMARC1; p=reject\"\n"
	if err := os.WriteFile(zoneFile, []byte(zoneText), 0o600); err != nil {
		t.Fatal(err)
	}
	zone, err := dnscache.LoadZoneFile(zoneFile)
	if err != nil {
		t.Fatal(err)
	}
	failing := &dnstest.Resolver{
		TXT:  map[string][]string{"sender.example": {"v=spf1 include:broken.example -all"}},
		Fail: map[string]dnstest.Failure{"broken.example": dnstest.ServFail, "_dmarc.sender.example": dnstest.Timeout, "sel._domainkey.sender.example": dnstest.ServFail},
	}
	msg := "DKIM-Signature: v=1; a=rsa-sha256; d=sender.example; s=sel; h=from; bh=AAAA; b=AAAA\r\n" + msgText("sender.example", "", "Hi.\r\n")
	for _, tc := range []struct {
		name   string
		r      dnscache.Resolver
		result map[string]verify.Status
	}{
		{"zone file", zone, map[string]verify.Status{"spf": verify.StatusPermerror, "dkim": verify.StatusPermerror, "dmarc": verify.StatusFail}},
		{"failing server", failing, map[string]verify.Status{"spf": verify.StatusTemperror, "dkim": verify.StatusTemperror, "dmarc": verify.StatusTemperror}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf syncbuf.Buffer
			// Not enforced: the message is accepted, so the fields
			// inserted (Received-SPF) are checked too.
			pol := DefaultPolicy()
			pol.Enforce = false
			e := &Engine{Resolver: tc.r, AuthservID: "mx.test", Policy: pol, ReceivedSPF: true, Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
			v, _, _ := run(t, e, env("192.0.2.1", "helo.nowhere.example", "a@sender.example"), msg)
			if v.SPF.Status != tc.result["spf"] || v.DKIM[0].Status != tc.result["dkim"] || v.DMARC.Status != tc.result["dmarc"] {
				t.Fatalf("spf %s dkim %s dmarc %s, want %v", v.SPF.Status, v.DKIM[0].Status, v.DMARC.Status, tc.result)
			}
			public := []string{v.AuthResults, v.Reply}
			if len(v.Insert) == 0 {
				t.Fatal("no header field inserted")
			}
			for _, f := range v.Insert {
				public = append(public, string(f.Raw)) // Received-SPF too
			}
			for _, text := range public {
				for _, leak := range []string{dir, "dnstest", "on zone", "no such host", "SERVFAIL", "timeout", "spf: ", "dmarc: "} {
					if strings.Contains(text, leak) {
						t.Errorf("%q in public text:\n%s", leak, text)
					}
				}
			}
			ar := unfoldAR(v.AuthResults)
			for _, want := range map[string][]string{
				"zone file":      {`reason="include target has no SPF record (at include:missing.example)"`, `reason="no SPF record"`, `reason="key not found"`},
				"failing server": {`reason="temporary DNS failure (at include:broken.example)"`, `reason="temporary DNS failure during policy discovery"`},
			}[tc.name] {
				if !strings.Contains(ar, want) {
					t.Errorf("A-R lacks %s:\n%s", want, ar)
				}
			}
			// The log line has the whole story.
			rec := logRecord(t, &buf)
			if tc.r == zone && !strings.Contains(buf.String(), "missing.example") {
				t.Errorf("log line lost the detail: %v", rec)
			}
		})
	}
}

func prefixList(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}
