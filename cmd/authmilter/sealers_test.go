package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/message"
)

// TestSealersCommand: the daemon counts the sealer of a relayed message
// that fails DMARC here, writes its state file at shutdown, and
// `authmilter sealers` shows it as one trusting would have helped.
func TestSealersCommand(t *testing.T) {
	t.Parallel()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	zone := &dnstest.Resolver{TXT: map[string][]string{
		"example.com":                      {"v=spf1 -all"},
		"_dmarc.example.com":               {"v=DMARC1; p=reject"},
		"arc._domainkey.lists.example.org": {"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))},
	}}
	dns := dnstest.Serve(t, zone)
	dir := t.TempDir()
	state := filepath.Join(dir, "sealers.json")
	path := writeConfig(t, "listen: inet:127.0.0.1:0\nauthserv_id: m.test\npolicy: {internal_networks: [], iprev: off}\ndns: {servers: [\""+dns+"\"]}\n"+
		"arc:\n  trusted_sealers: [other.example]\n  sealer_stats: {file: \""+state+"\", max_sealers: 10}\n")

	// The list verified the author (dmarc=pass), then sealed the message
	// it passes on; SPF for its own MAIL FROM fails DMARC alignment here.
	text := "From: Alice <alice@example.com>\r\nTo: talk@lists.example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
	br := bufio.NewReader(strings.NewReader(text))
	fields, err := message.ReadHeader(br, message.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	val := arc.NewValidator(context.Background(), zone, fields, nil)
	body, _ := io.ReadAll(br)
	val.Write(body)
	chain := val.Close()
	set, err := (&arc.Sealer{Domain: "lists.example.org", Selector: "arc", Key: key}).
		Seal(fields, val.BodyHash(), chain, "lists.example.org", "dmarc=pass header.from=example.com")
	if err != nil {
		t.Fatal(err)
	}

	ready := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var log bytes.Buffer
	go func() { done <- serve(ctx, path, &log, nil, func(a net.Addr) { ready <- a }) }()
	var addr string
	select {
	case a := <-ready:
		addr = a.String()
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not start")
	}
	c := gomilter.NewClientWithOptions("tcp", addr, gomilter.ClientOptions{
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		ActionMask: gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine,
	})
	s, err := c.Session()
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ *gomilter.Action, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Conn("mail.lists.example.org", gomilter.FamilyInet, 40000, "198.51.100.7"))
	must(s.Helo("mail.lists.example.org"))
	must(s.Mail("<bounces@lists.example.org>", nil))
	must(s.Rcpt("<bob@example.net>", nil))
	for _, f := range append(set, fields...) {
		must(s.HeaderField(f.Name, strings.TrimSuffix(f.Value(), "\r\n")))
	}
	must(s.HeaderEnd())
	must(s.BodyChunk(body))
	_, act, err := s.End()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if act.SMTPCode != 550 {
		t.Fatalf("action %+v: the sealer is not trusted, the message should be rejected", act)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCmd("sealers", "--config", path, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s\ndaemon log:\n%s", code, errOut, log.String())
	}
	var rep struct {
		Sealers []struct {
			Domain            string `json:"domain"`
			Messages          int64  `json:"messages"`
			ChainPass         int64  `json:"chain_pass"`
			DMARCFail         int64  `json:"dmarc_fail"`
			UpstreamDMARCPass int64  `json:"upstream_dmarc_pass"`
			WouldOverride     int64  `json:"would_override"`
			Trusted           bool   `json:"trusted"`
		} `json:"sealers"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Sealers) != 1 {
		t.Fatalf("sealers %s", out)
	}
	got := rep.Sealers[0]
	if got.Domain != "lists.example.org" || got.Messages != 1 || got.ChainPass != 1 || got.DMARCFail != 1 ||
		got.UpstreamDMARCPass != 1 || got.WouldOverride != 1 || got.Trusted {
		t.Errorf("sealer %+v", got)
	}
	code, out, _ = runCmd("sealers", "--config", path)
	if code != 0 || !strings.Contains(out, "lists.example.org") || !strings.Contains(out, "WOULD_OVERRIDE") {
		t.Errorf("text output (exit %d):\n%s", code, out)
	}
	if code, _, errOut := runCmd("sealers", "--file", filepath.Join(dir, "none.json")); code != 1 || !strings.Contains(errOut, "none.json") {
		t.Errorf("missing file: exit %d %s", code, errOut)
	}
	if _, err := os.Stat(state); err != nil {
		t.Error(err)
	}
}
