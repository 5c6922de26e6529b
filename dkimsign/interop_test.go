package dkimsign

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/interop"
)

// Interoperability: messages signed here verify with dkimpy (python3-dkim),
// Mail::DKIM (libmail-dkim-perl), OpenDKIM (the opendkim daemon's test
// mode, package opendkim) and authmilter's own verifier; and the OpenDKIM
// table reader decides as the opendkim daemon does on the same tables.

// dkimpyVerify prints, for each message file, one line of results, one
// word per DKIM-Signature in header order. DNS answers come from a JSON
// file of name → TXT record.
const dkimpyVerify = `
import sys, json, dkim
records = json.load(open(sys.argv[1]))
def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    v = records.get(name.rstrip('.').lower())
    return v.encode() if v is not None else None
for path in sys.argv[2:]:
    msg = open(path, 'rb').read()
    d = dkim.DKIM(msg)
    n = len([h for h in d.headers if h[0].lower() == b'dkim-signature'])
    out = []
    for i in range(n):
        try:
            out.append('pass' if d.verify(idx=i, dnsfunc=dnsfunc) else 'fail')
        except Exception as e:
            sys.stderr.write('%s: %r\n' % (path, e))
            out.append('error')
    print(' '.join(out))
`

// mailDKIMVerify does the same with Mail::DKIM, its DNS pointed at
// dnstest.Serve.
const mailDKIMVerify = `
use strict; use warnings;
use Mail::DKIM::Verifier; use Mail::DKIM::DNS; use Net::DNS::Resolver;
my ($dns, @files) = @ARGV;
my ($host, $port) = split /:/, $dns;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(nameservers => [$host], port => $port, recurse => 1, udp_timeout => 5, tcp_timeout => 5, retry => 1));
for my $f (@files) {
    my $msg = do { open(my $fh, '<:raw', $f) or die $!; local $/; <$fh> };
    my $v = Mail::DKIM::Verifier->new;
    $v->PRINT($msg); $v->CLOSE;
    print join(' ', map { $_->result } $v->signatures), "\n";
}
`

type interopKeys struct {
	dir      string
	r        *dnstest.Resolver
	table    *Table
	dnsJSON  string
	keysFile string // OpenDKIM TestPublicKeys
}

// newInteropKeys makes an RSA-2048 and an Ed25519 key for example.com and
// a pair for *.example.com (d=example.com, other selectors), and publishes
// them.
func newInteropKeys(t *testing.T) *interopKeys {
	e := &interopKeys{dir: t.TempDir(), r: &dnstest.Resolver{TXT: map[string][]string{}}}
	var entries []Entry
	records := map[string]string{}
	var keys strings.Builder
	for _, e2 := range []struct{ domain, sel string }{
		{"example.com", "rsa"}, {"example.com", "ed"}, {"*.example.com", "subrsa"}, {"*.example.com", "subed"},
	} {
		var k Key
		if strings.HasSuffix(e2.sel, "rsa") {
			k.Signer = rsaKey(t, 2048)
		} else {
			k.Signer = edKey(t)
		}
		file := writeKey(t, e.dir, e2.sel+".pem", k.Signer, 0o600)
		entries = append(entries, Entry{Domain: e2.domain, Selector: e2.sel, KeyFile: file})
		name := e2.sel + "._domainkey.example.com"
		rec := record(t, k.Signer)
		records[name] = rec
		e.r.TXT[name] = []string{rec}
		fmt.Fprintf(&keys, "%s %s\n", name, rec)
	}
	var err error
	if e.table, _, err = Load(entries); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(records)
	e.dnsJSON = filepath.Join(e.dir, "dns.json")
	e.keysFile = filepath.Join(e.dir, "testkeys")
	for p, c := range map[string][]byte{e.dnsJSON: data, e.keysFile: []byte(keys.String())} {
		if err := os.WriteFile(p, c, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// interopMessages are the message shapes every key set signs.
func interopMessages(from string) map[string]string {
	hdr := "From: Alice <" + from + ">\r\nTo: Bob <bob@example.net>\r\nSubject: Interop\r\n" +
		"Date: Sat, 05 Dec 2026 12:00:00 +0000\r\nMessage-ID: <interop@example.com>\r\n"
	return map[string]string{
		"plain": hdr + "\r\nHello Bob,  \r\n\r\nThe lazy dog\t sleeps.\r\n\r\n\r\n",
		"folded": "From: Alice\r\n <" + from + ">\r\nTo: Bob <bob@example.net>,\r\n\tCarol <carol@example.net>\r\n" +
			"Subject: A subject folded\r\n  over   two lines\r\nDate: Sat, 05 Dec 2026 12:00:00 +0000\r\n" +
			"Message-ID: <folded@example.com>\r\n\r\nBody.\r\n",
		"8bit": hdr + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n" +
			"\r\nGr\xfc\xdfe, \xe9t\xe9 \xe0 Z\xfcrich \r\nUTF-8 too: \xc3\xa9\xe2\x82\xac\r\n",
		"no final CRLF": hdr + "\r\nLast line without a line end  ",
	}
}

// peerResults runs a verifier over files and returns one line per file.
func peerResults(t *testing.T, name string, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", filepath.Base(name), err, errb.String())
	}
	if errb.Len() > 0 {
		t.Logf("%s said:\n%s", filepath.Base(name), errb.String())
	}
	return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
}

// opendkimDaemon returns the opendkim binary (in /usr/sbin, which a
// non-root PATH often lacks).
func opendkimDaemon(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("opendkim"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/opendkim"); err == nil {
		return "/usr/sbin/opendkim"
	}
	return interop.Need(t, "opendkim", "opendkim")
}

// opendkimTest runs "opendkim -t file" with the configuration conf and
// returns its output (stdout and stderr: -vvv reports the header fields it
// would add there).
func opendkimTest(t *testing.T, daemon, dir, conf, file string) string {
	t.Helper()
	cfg := filepath.Join(dir, "opendkim.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, daemon, "-x", cfg, "-t", file, "-vvv")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	// With nothing to sign, the milter accepts at end of headers, which
	// test mode reports with exit status 70 (EX_SOFTWARE).
	// A SigningTable row naming a key the KeyTable lacks ("%" for a
	// domain without a key) makes it tempfail the message there.
	if err != nil && !strings.Contains(string(out), "mlfi_eoh() returned SMFIS_ACCEPT") && !strings.Contains(string(out), "mlfi_eoh() returned SMFIS_TEMPFAIL") {
		t.Fatalf("opendkim -t: %v\n%s", err, out)
	}
	return string(out)
}

var arDKIM = regexp.MustCompile(`dkim=(\w+)[^;]*header\.s=(\w+)`)

func TestInteropPeersVerify(t *testing.T) {
	python := interop.NeedPythonModule(t, "dkim", "python3-dkim")
	perl := interop.NeedPerlModule(t, "Mail::DKIM::Verifier", "libmail-dkim-perl")
	daemon := opendkimDaemon(t)
	e := newInteropKeys(t)
	dnsAddr := dnstest.Serve(t, e.r)

	type signedMsg struct {
		name, file string
		selectors  []string
		tampered   bool
		// noFinalCRLF: the file as signed, its last line without a line
		// end. SMTP cannot carry that (DATA ends in CRLF.CRLF, so the MTA
		// adds the CRLF RFC 6376 §3.4.4 also adds when hashing); dkimpy
		// 1.1.4 (an exception) and OpenDKIM 2.11 (fail) do not add it, so
		// they check the message as transported, in the entry next to it.
		noFinalCRLF bool
	}
	var msgs []signedMsg
	for _, from := range []string{"alice@example.com", "alice@mail.example.com"} {
		all := e.table.Keys(from)
		sets := map[string][]Key{"both": all}
		for _, k := range all {
			sets[k.Algorithm()] = []Key{k}
		}
		if len(sets) != 3 {
			t.Fatalf("%s: key sets %v", from, pairs(all))
		}
		for setName, keys := range sets {
			for shape, msg := range interopMessages(from) {
				signed, sigs := signString(t, msg, keys, nil)
				var sels []string
				for _, s := range sigs {
					sels = append(sels, s.Selector)
				}
				name := fmt.Sprintf("%s/%s/%s", from, setName, shape)
				type variant struct{ tampered, raw bool }
				variants := []variant{{false, false}, {true, false}}
				if !strings.HasSuffix(msg, "\r\n") {
					variants = append(variants, variant{false, true}, variant{true, true})
				}
				for _, v := range variants {
					tampered := v.tampered
					m := signed
					if !v.raw && !strings.HasSuffix(m, "\r\n") {
						m += "\r\n" // as SMTP transports it
					}
					if tampered {
						// A signed header field changed: every verifier must
						// say fail, or the test proves nothing.
						m = strings.Replace(signed, "<bob@example.net>", "<eve@example.net>", 1)
					}
					f := filepath.Join(e.dir, fmt.Sprintf("msg%03d.eml", len(msgs)))
					if err := os.WriteFile(f, []byte(m), 0o600); err != nil {
						t.Fatal(err)
					}
					msgs = append(msgs, signedMsg{name: name, file: f, selectors: sels, tampered: tampered, noFinalCRLF: v.raw})
				}
			}
		}
	}
	files := make([]string, len(msgs))
	for i, m := range msgs {
		files[i] = m.file
	}
	py := peerResults(t, python, append([]string{"-c", dkimpyVerify, e.dnsJSON}, files...)...)
	pl := peerResults(t, perl, append([]string{"-e", mailDKIMVerify, dnsAddr}, files...)...)
	if len(py) != len(msgs) || len(pl) != len(msgs) {
		t.Fatalf("peers answered %d and %d lines for %d messages", len(py), len(pl), len(msgs))
	}
	edWords := map[string]int{} // Mail::DKIM's verdicts on Ed25519 signatures
	odConf := "Mode v\nSyslog no\nBackground no\nAlwaysAddARHeader yes\nAuthservID test\nTestPublicKeys " + e.keysFile + "\n"
	for i, m := range msgs {
		want := "pass"
		if m.tampered {
			want = "fail"
		}
		// Ours.
		raw, _ := os.ReadFile(m.file)
		for j, s := range verifyOwn(t, e.r, string(raw)) {
			if string(s.Status) != want {
				t.Errorf("%s (tampered %v): authmilter: signature %d %s (%s)", m.name, m.tampered, j, s.Status, s.Reason)
			}
		}
		// dkimpy: one word per signature, in header order (ours).
		words := strings.Fields(py[i])
		if m.noFinalCRLF {
			words = nil
		}
		if len(words) != len(m.selectors) && !m.noFinalCRLF {
			t.Errorf("%s: dkimpy saw %q", m.name, py[i])
		}
		for j, w := range words {
			if w != want && !(m.tampered && w == "error") { // dkimpy raises on some failures
				t.Errorf("%s (tampered %v): dkimpy: signature s=%s %s", m.name, m.tampered, m.selectors[j], w)
			}
		}
		// Mail::DKIM 1.20230212 (Debian 12) has no Ed25519: it reports
		// those signatures "invalid" (unsupported algorithm); RSA ones must
		// pass.
		words = strings.Fields(pl[i])
		if len(words) != len(m.selectors) {
			t.Errorf("%s: Mail::DKIM saw %q", m.name, pl[i])
		}
		for j, w := range words {
			if strings.HasSuffix(m.selectors[j], "ed") {
				edWords[w]++
				if w == "pass" && m.tampered {
					t.Errorf("%s: Mail::DKIM passed a tampered Ed25519 signature", m.name)
				}
				continue
			}
			if w != want {
				t.Errorf("%s (tampered %v): Mail::DKIM: signature s=%s %s", m.name, m.tampered, m.selectors[j], w)
			}
		}
		// OpenDKIM: its Authentication-Results, one dkim= per signature.
		if m.noFinalCRLF {
			continue
		}
		out := opendkimTest(t, daemon, e.dir, odConf, m.file)
		got := map[string]string{}
		for _, sm := range arDKIM.FindAllStringSubmatch(out, -1) {
			got[sm[2]] = sm[1]
		}
		for _, sel := range m.selectors {
			if got[sel] != want {
				t.Errorf("%s (tampered %v): OpenDKIM: s=%s %q\n%s", m.name, m.tampered, sel, got[sel], out)
			}
		}
	}
	t.Logf("Mail::DKIM on Ed25519 signatures (not required): %v", edWords)
	t.Logf("%d signed messages (half of them tampered) checked by authmilter, dkimpy, Mail::DKIM (RSA only) and OpenDKIM", len(msgs))
}

// odDecisions parses the DKIM-Signatures opendkim -t would add: "d/s" or
// "d/s/i" as pairs() writes them.
var odSig = regexp.MustCompile(`hname='DKIM-Signature' hvalue='([^']*)'`)
var odTag = regexp.MustCompile(`(?:^|[;\s])([dsi])=([^;\s]+)`)

func odDecisions(out string) []string {
	var res []string
	for _, m := range odSig.FindAllStringSubmatch(out, -1) {
		tags := map[string]string{}
		for _, tm := range odTag.FindAllStringSubmatch(m[1], -1) {
			tags[tm[1]] = tm[2]
		}
		s := tags["d"] + "/" + tags["s"]
		if tags["i"] != "" && tags["i"] != "@"+tags["d"] {
			s += "/" + tags["i"]
		}
		res = append(res, s)
	}
	return res
}

// TestInteropOpenDKIMTables: the same KeyTable and SigningTable files, and
// the same messages, through OpenDKIM and through LoadOpenDKIM give the same
// signatures (d=, s=, i=). The tables follow the formats of opendkim.conf(5)
// and opendkim(8), written here.
func TestInteropOpenDKIMTables(t *testing.T) {
	daemon := opendkimDaemon(t)
	dir := t.TempDir()
	odFixture(t, dir)
	froms := []string{"user@foo.example.com", "other@foo.example.com", "user@example.com", "Someone <User@Example.ORG>", "x@deep.sub.example.com", "user@example.net"}
	tables := []struct {
		kind, table string
		multiple    bool
	}{
		// Typical migrations: apex and subdomain rows, a catch-all, %.
		{"refile", "*@example.com k1\n*@*.example.com k2\n", false},
		{"refile", "# per user first\nuser@* k3\n*@*example.* k1\n* k6\n", false},
		{"refile", "*@example.org k5\n*@*.example.com k1:postmaster@%\n", false},
		{"file", "example.com k1\n.example.com k2\nuser@example.net k6\n", false},
		{"file", "user@foo.example.com k3\nfoo.example.com k4\n.example.com k1\nuser@.example.com k2\n", false},
		{"file", "user@.com k2\n.example.com k1:sig@%\n* k5\n", false},
		{"file", "example.org k5\nuser@* k3:user@example.com\n", false},
		{"file", "example.com %\n.example.com k1\n", false},
		// MultipleSignatures with at most two matches (OpenDKIM 2.11
		// applies only the first and the last of three or more).
		{"refile", "*@*.example.com k1\n*@foo.example.com k2\n", true},
		{"file", "example.com k1\n* k4\n", true},
		{"file", "user@.com k2\n.example.com k1\n", true},
	}
	for i, tc := range tables {
		o := loadOD(t, dir, tc.kind, tc.table, tc.multiple)
		multi := "no"
		if tc.multiple {
			multi = "yes"
		}
		conf := "Mode s\nSyslog no\nBackground no\nRequireSafeKeys no\nKeyTable file:" + filepath.Join(dir, "KeyTable") +
			"\nSigningTable " + tc.kind + ":" + filepath.Join(dir, "SigningTable") + "\nMultipleSignatures " + multi + "\n"
		for _, from := range froms {
			msg := filepath.Join(dir, "msg.eml")
			if err := os.WriteFile(msg, []byte("From: "+from+"\r\nTo: b@example.net\r\nSubject: t\r\n\r\nbody\r\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			out := opendkimTest(t, daemon, dir, conf, msg)
			want := odDecisions(out)
			if strings.Contains(out, "SMFIS_TEMPFAIL") {
				// authmilter passes such a message on unsigned (see OpenDKIM).
				t.Logf("table %d, from %q: OpenDKIM tempfails; authmilter does not sign", i, from)
			}
			local, domain, ok := SplitFrom(from)
			if !ok {
				t.Fatalf("SplitFrom(%q)", from)
			}
			got := pairs(o.Keys(local, domain))
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("table %d (%s, multiple %v) %q, from %q: authmilter %v, OpenDKIM %v", i, tc.kind, tc.multiple, tc.table, from, got, want)
			}
		}
	}
}
