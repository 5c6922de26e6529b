package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
	msgauthdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/interop"
	"github.com/authmilter/authmilter/internal/testsupport/syncbuf"
)

// TestMigrateJudgedBothWays (issue #22): the real OpenDKIM and OpenDMARC
// run as milters with configuration files written here; `authmilter
// migrate` translates the same files and `authmilter serve` runs the
// result, on the socket the translation names. The same messages go to
// both (OpenDKIM, then OpenDMARC with OpenDKIM's Authentication-Results,
// as Postfix chains them) and each must end the same way: accept,
// quarantine, reject or tempfail. Where the two are known to differ by
// design, the case says why; any other difference fails the test.
//
// OpenDMARC and libspf2 ask the libc resolver, so they run in a private
// mount namespace whose /etc/resolv.conf names the test's DNS server on a
// loopback address of its own, port 53: this needs root (unshare -m).
func TestMigrateJudgedBothWays(t *testing.T) {
	if testing.Short() {
		t.Skip("runs OpenDKIM and OpenDMARC")
	}
	opendmarc := interop.Need(t, "opendmarc", "opendmarc")
	opendkim := interop.Need(t, "opendkim", "opendkim")
	unshare := interop.Need(t, "unshare", "util-linux")
	if os.Geteuid() != 0 {
		t.Skip("OpenDMARC resolves through /etc/resolv.conf: pointing it at the test's DNS needs a mount namespace (unshare -m), which needs root")
	}

	// DNS: the sender domains, on 127.X.Y.53:53.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	zone := &dnstest.Resolver{TXT: map[string][]string{
		"example.com":                {"v=spf1 ip4:192.0.2.0/24 -all"},
		"_dmarc.example.com":         {"v=DMARC1; p=reject"},
		"sel._domainkey.example.com": {"v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(spki)},
		"quarantined.test":           {"v=spf1 -all"},
		"_dmarc.quarantined.test":    {"v=DMARC1; p=quarantine"},
		"monitored.test":             {"v=spf1 -all"},
		"_dmarc.monitored.test":      {"v=DMARC1; p=none"},
		"nopolicy.test":              {"v=spf1 -all"},
		"ignored.test":               {"v=spf1 -all"},
		"_dmarc.ignored.test":        {"v=DMARC1; p=reject"},
		"sub.ignored.test":           {"v=spf1 -all"},
		"_dmarc.sub.ignored.test":    {"v=DMARC1; p=reject"},
		"partner.test":               {"v=spf1 -all"},
		"_dmarc.partner.test":        {"v=DMARC1; p=reject"},
		"forwarder.test":             {"v=spf1 ip4:198.51.100.0/24 -all"},
	}}
	dnsIP := ""
	srv := &dnstest.DelayServer{Resolver: zone}
	for i := 0; i < 20 && dnsIP == ""; i++ {
		n, _ := rand.Int(rand.Reader, big.NewInt(200*250))
		ip := fmt.Sprintf("127.%d.%d.53", 30+n.Int64()/250, 1+n.Int64()%250)
		if srv.Start(ip+":53") == nil {
			dnsIP = ip
		}
	}
	if dnsIP == "" {
		t.Fatal("no free loopback address for a DNS server on port 53")
	}
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	resolvConf := write("resolv.conf", "nameserver "+dnsIP+"\noptions attempts:1 timeout:2\n")
	dkimPort, dmarcPort := freePort(t), freePort(t)
	// Written as opendkim.conf(5) and opendmarc.conf(5) describe them.
	dkimConf := write("opendkim.conf", fmt.Sprintf(`# verifying only, as in front of OpenDMARC
Mode            v
Socket          inet:%d@127.0.0.1
Syslog          no
Nameservers     %s
AuthservID      mx.interop.test
SoftwareHeader  no
MinimumKeyBits  1024
`, dkimPort, dnsIP))
	ignoreHosts := write("ignore-hosts", "# relays whose mail is not judged\n203.0.113.0/24\n")
	dmarcConf := write("opendmarc.conf", fmt.Sprintf(`Socket                  inet:%d@127.0.0.1
Syslog                  false
AuthservID              mx.interop.test
TrustedAuthservIDs      mx.interop.test
RejectFailures          true
HoldQuarantinedMessages true
SPFSelfValidate         true
SPFIgnoreResults        true
IgnoreHosts             %s
IgnoreMailFrom          ignored.test
IgnoreMailTo            postmaster@example.net
RequiredHeaders         true
RejectMultiValueFrom    true
DomainWhitelist         partner.test
FailureReports          false
SoftwareHeader          false
`, dmarcPort, ignoreHosts))

	sign := func(msg string) string {
		var out bytes.Buffer
		if err := msgauthdkim.Sign(&out, strings.NewReader(msg), &msgauthdkim.SignOptions{
			Domain: "example.com", Selector: "sel", Signer: key,
			HeaderCanonicalization: msgauthdkim.CanonicalizationRelaxed, BodyCanonicalization: msgauthdkim.CanonicalizationRelaxed,
		}); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	text := func(from, subject string) string {
		return "From: " + from + "\r\nTo: bob@example.net\r\nSubject: " + subject +
			"\r\nDate: Tue, 24 Nov 2026 08:00:00 +0000\r\nMessage-ID: <" + subject + "@interop.test>\r\n\r\nHello Bob.\r\n"
	}
	type msgCase struct {
		name           string
		ip, mailFrom   string
		rcpt           string
		data           string
		want           string // the outcome both should give
		differs, other string // a known difference: why, and authmilter's outcome
	}
	const stranger, relayIP = "198.51.100.7", "203.0.113.9"
	cases := []msgCase{
		{name: "aligned SPF pass", ip: "192.0.2.10", mailFrom: "alice@example.com", data: text("alice@example.com", "spf-pass"), want: "accept"},
		{name: "aligned DKIM pass (OpenDKIM's result)", ip: stranger, mailFrom: "list@forwarder.test", data: sign(text("alice@example.com", "dkim-pass")), want: "accept"},
		{name: "p=reject failure (RejectFailures)", ip: stranger, mailFrom: "list@forwarder.test", data: text("alice@example.com", "reject"), want: "reject"},
		{name: "broken signature: p=reject failure", ip: stranger, mailFrom: "list@forwarder.test",
			data: strings.Replace(sign(text("alice@example.com", "broken")), "Hello Bob.", "Hello Eve.", 1), want: "reject"},
		{name: "p=quarantine failure (HoldQuarantinedMessages)", ip: stranger, mailFrom: "list@forwarder.test", data: text("a@quarantined.test", "quarantine"), want: "quarantine"},
		{name: "p=none failure", ip: stranger, mailFrom: "list@forwarder.test", data: text("a@monitored.test", "none"), want: "accept"},
		{name: "no DMARC record", ip: stranger, mailFrom: "list@forwarder.test", data: text("a@nopolicy.test", "no-policy"), want: "accept"},
		{name: "IgnoreHosts: a failure from a listed relay", ip: relayIP, mailFrom: "list@forwarder.test", data: text("alice@example.com", "ignored-host"), want: "accept"},
		{name: "IgnoreMailFrom: From domain listed", ip: stranger, mailFrom: "list@forwarder.test", data: text("a@ignored.test", "ignored-from"), want: "accept"},
		{name: "IgnoreMailFrom: envelope sender listed, From not", ip: stranger, mailFrom: "list@ignored.test", data: text("alice@example.com", "ignored-envelope"), want: "reject"},
		{name: "IgnoreMailFrom: a subdomain of the listed domain", ip: stranger, mailFrom: "list@forwarder.test", data: text("a@sub.ignored.test", "ignored-sub"), want: "reject",
			differs: "OpenDMARC matches IgnoreMailFrom exactly, authmilter's allow_domains covers subdomains too (and sub.ignored.test inherits ignored.test's p=reject)", other: "accept"},
		{name: "IgnoreMailTo: a failure for postmaster", ip: stranger, mailFrom: "list@forwarder.test", rcpt: "postmaster@example.net", data: text("alice@example.com", "ignored-rcpt"), want: "reject"},
		{name: "DomainWhitelist: a failure From a listed domain, no ARC", ip: stranger, mailFrom: "list@forwarder.test", data: text("a@partner.test", "whitelisted"), want: "reject"},
		{name: "RequiredHeaders: no From", ip: stranger, mailFrom: "list@forwarder.test",
			data: strings.Replace(text("x@example.com", "no-from"), "From: x@example.com\r\n", "", 1), want: "reject"},
		{name: "RequiredHeaders: two From fields", ip: stranger, mailFrom: "list@forwarder.test",
			data: "From: b@example.com\r\n" + text("alice@example.com", "two-from"), want: "reject"},
		{name: "RequiredHeaders: From without a domain", ip: stranger, mailFrom: "list@forwarder.test", data: text("Alice <alice>", "no-domain"), want: "reject"},
		{name: "RejectMultiValueFrom: two addresses, two domains", ip: "192.0.2.10", mailFrom: "alice@example.com", data: text("alice@example.com, carol@partner.test", "two-domains"), want: "reject"},
		{name: "RejectMultiValueFrom: two addresses, one domain", ip: "192.0.2.10", mailFrom: "alice@example.com", data: text("alice@example.com, carol@example.com", "two-addresses"), want: "accept",
			differs: "OpenDMARC lets several From addresses in one domain through; authmilter's policy.from_checks refuses every From with several addresses", other: "reject"},
		{name: "RequiredHeaders: two Subject fields", ip: "192.0.2.10", mailFrom: "alice@example.com",
			data: "Subject: again\r\n" + text("alice@example.com", "two-subjects"), want: "reject",
			differs: "RequiredHeaders checks every RFC 5322 §3.6 field count; authmilter's policy.from_checks only the From field (docs/migrating.md)", other: "accept"},
		{name: "RequiredHeaders: no Date", ip: "192.0.2.10", mailFrom: "alice@example.com",
			data: strings.Replace(text("alice@example.com", "no-date"), "Date: Tue, 24 Nov 2026 08:00:00 +0000\r\n", "", 1), want: "reject",
			differs: "RequiredHeaders checks every RFC 5322 §3.6 field count; authmilter's policy.from_checks only the From field (docs/migrating.md)", other: "accept"},
	}

	// The originals, in the private mount namespace.
	logs := &syncbuf.Buffer{}
	startInNS := func(name string, argv ...string) *exec.Cmd {
		args := append([]string{"-m", "--propagation", "private", "sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$@"`, resolvConf}, argv...)
		cmd := exec.Command(unshare, args...)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return cmd
	}
	stop := func(cmd *exec.Cmd) {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	dkimCmd := startInNS("opendkim", opendkim, "-f", "-x", dkimConf)
	t.Cleanup(func() { stop(dkimCmd) })
	dmarcCmd := startInNS("opendmarc", opendmarc, "-f", "-c", dmarcConf)
	t.Cleanup(func() { stop(dmarcCmd) })
	dkimAddr, dmarcAddr := "127.0.0.1:"+strconv.Itoa(dkimPort), "127.0.0.1:"+strconv.Itoa(dmarcPort)
	waitListening(t, dkimAddr, logs)
	waitListening(t, dmarcAddr, logs)

	original := make([]string, len(cases))
	for i, c := range cases {
		out, added, reply := milterRun(t, dkimAddr, c.ip, c.mailFrom, c.rcpt, c.data, "")
		if out == "accept" {
			// OpenDMARC sees what OpenDKIM added, as Postfix passes it on.
			out, _, reply = milterRun(t, dmarcAddr, c.ip, c.mailFrom, c.rcpt, c.data, added)
		}
		original[i] = out + " " + reply
	}
	stop(dmarcCmd)
	stop(dkimCmd)

	// The translation, served on the socket it names (OpenDKIM's, now
	// free).
	code, yaml, errOut := runCmd("migrate", "--opendkim", dkimConf, "--opendmarc", dmarcConf)
	if code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, errOut)
	}
	cfgPath := write("authmilter.yaml", yaml)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	amLog := &syncbuf.Buffer{}
	go func() { done <- serve(ctx, cfgPath, amLog, nil, func(a net.Addr) { ready <- a }) }()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case a := <-ready:
		if a.String() != dkimAddr {
			t.Errorf("authmilter listens on %s, the translation of OpenDKIM's Socket is %s", a, dkimAddr)
		}
	case err := <-done:
		t.Fatalf("serve: %v\n%s\n%s", err, amLog.String(), yaml)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start in 10s")
	}

	var table strings.Builder
	for i, c := range cases {
		out, _, reply := milterRun(t, dkimAddr, c.ip, c.mailFrom, c.rcpt, c.data, "")
		orig := strings.SplitN(original[i], " ", 2)[0]
		fmt.Fprintf(&table, "%-58s OpenDMARC %-10s authmilter %-10s %s | %s\n", c.name, orig, out, strings.SplitN(original[i], " ", 2)[1], reply)
		want := c.want
		if orig != want {
			t.Errorf("%s: OpenDKIM+OpenDMARC gave %s, the test expects %s", c.name, original[i], want)
		}
		if c.differs != "" {
			want = c.other
		}
		if out != want {
			t.Errorf("%s: authmilter with the translated configuration gave %s %s, want %s", c.name, out, reply, want)
		}
	}
	t.Logf("outcomes:\n%s", table.String())
	if t.Failed() {
		t.Logf("translation:\n%s\noriginals' log:\n%s\nauthmilter log:\n%s", yaml, logs.String(), amLog.String())
	}
}

// freePort returns a TCP port free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitListening(t *testing.T, addr string, logs *syncbuf.Buffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after 10s:\n%s", addr, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// milterRun passes one message through the milter at addr as Postfix
// would (header values without the leading space, folded lines with LF),
// with the fields of prepend first; it returns the outcome (accept,
// quarantine, reject or tempfail), the Authentication-Results fields the
// milter added (as header lines to prepend for the next milter), and the
// reply text.
func milterRun(t *testing.T, addr, ip, mailFrom, rcpt, data, prepend string) (outcome, added, reply string) {
	t.Helper()
	if rcpt == "" {
		rcpt = "bob@example.net"
	}
	c := gomilter.NewClientWithOptions("tcp", addr, gomilter.ClientOptions{
		ReadTimeout: 15 * time.Second, WriteTimeout: 15 * time.Second,
		ActionMask: gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine | gomilter.OptChangeBody,
	})
	s, err := c.Session()
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	defer s.Close()
	final := func(act *gomilter.Action) string {
		switch {
		case act.Code == gomilter.ActReject || act.Code == gomilter.ActReplyCode && act.SMTPCode/100 == 5:
			return "reject"
		case act.Code == gomilter.ActTempFail || act.Code == gomilter.ActReplyCode && act.SMTPCode/100 == 4:
			return "tempfail"
		case act.Code == gomilter.ActDiscard:
			return "discard"
		}
		return ""
	}
	step := func(act *gomilter.Action, err error) bool {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if o := final(act); o != "" {
			outcome, reply = o, strconv.Itoa(act.SMTPCode)+" "+act.SMTPText
			return true
		}
		return act.Code == gomilter.ActAccept
	}
	s.Macros(gomilter.CodeConn, "j", "mx.interop.test", "{daemon_name}", "mx.interop.test")
	if step(s.Conn("client.interop.test", gomilter.FamilyInet, 40000, ip)) {
		return orAccept(outcome), "", reply
	}
	if step(s.Helo("client.interop.test")) {
		return orAccept(outcome), "", reply
	}
	s.Macros(gomilter.CodeMail, "i", "4ABC123", "{mail_addr}", mailFrom)
	if step(s.Mail("<"+mailFrom+">", nil)) {
		return orAccept(outcome), "", reply
	}
	if step(s.Rcpt("<"+rcpt+">", nil)) {
		return orAccept(outcome), "", reply
	}
	head, body, _ := strings.Cut(prepend+data, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	for i := 0; i < len(lines); i++ {
		name, value, _ := strings.Cut(lines[i], ":")
		for i+1 < len(lines) && (strings.HasPrefix(lines[i+1], " ") || strings.HasPrefix(lines[i+1], "\t")) {
			i++
			value += "\n" + lines[i]
		}
		if step(s.HeaderField(name, strings.TrimLeft(value, " \t"))) {
			return orAccept(outcome), "", reply
		}
	}
	if step(s.HeaderEnd()) {
		return orAccept(outcome), "", reply
	}
	if step(s.BodyChunk([]byte(body))) {
		return orAccept(outcome), "", reply
	}
	mods, act, err := s.End()
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	outcome = "accept"
	if o := final(act); o != "" {
		outcome, reply = o, strconv.Itoa(act.SMTPCode)+" "+act.SMTPText
	}
	for _, m := range mods {
		switch m.Code {
		case gomilter.ActQuarantine:
			if outcome == "accept" {
				outcome = "quarantine"
			}
		case gomilter.ActInsertHeader, gomilter.ActAddHeader:
			if strings.EqualFold(m.HeaderName, "Authentication-Results") {
				added += m.HeaderName + ": " + strings.ReplaceAll(strings.TrimLeft(m.HeaderValue, " "), "\n", "\r\n") + "\r\n"
			}
		}
	}
	return outcome, added, reply
}

func orAccept(o string) string {
	if o == "" {
		return "accept"
	}
	return o
}
