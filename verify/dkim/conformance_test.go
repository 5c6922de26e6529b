package dkim

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/conformance"
	"github.com/authmilter/authmilter/verify"
)

// mailDKIMCase is one entry of dkim-mail-dkim/expected.yml (see the
// conformance README for the format).
type mailDKIMCase struct {
	File                 string   `yaml:"file"`
	Expected             string   `yaml:"expected"`
	ExpectedPerSignature []string `yaml:"expected_per_signature"`
	SkippedUpstream      string   `yaml:"skipped_upstream"`
	Flags                []string `yaml:"rfc8301_and_scope_flags"`
	Signatures           []struct {
		Type string `yaml:"type"`
		A    string `yaml:"a"`
		Key  string `yaml:"key"`
	} `yaml:"signatures"`
}

// fakeDNS reads FAKE_DNS.dat: "name value" per line; NXDOMAIN, DNS errors
// and an empty record ("") as the README describes.
func fakeDNS(t *testing.T, path string) *dnstest.Resolver {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &dnstest.Resolver{TXT: map[string][]string{}, Fail: map[string]dnstest.Failure{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, _ := strings.Cut(line, " ")
		value = strings.TrimSpace(value)
		switch {
		case value == "NXDOMAIN":
		case strings.Contains(value, "timed out"):
			r.Fail[name] = dnstest.Timeout
		case value == "~~SERVFAIL~~":
			r.Fail[name] = dnstest.ServFail
		case value == `""`:
			r.TXT[name] = []string{""}
		default:
			r.TXT[name] = []string{value}
		}
	}
	return r
}

// weak reports whether RFC 8301 forbids considering the signature valid:
// rsa-sha1 (§3.1) or an RSA key under 1024 bits (§3.2).
func weak(a, key string) bool {
	if strings.EqualFold(a, "rsa-sha1") {
		return true
	}
	var bits int
	if f := strings.Fields(key); len(f) == 2 && f[0] == "rsa" {
		bits, _ = strconv.Atoi(strings.TrimSuffix(f[1], "-bit"))
	}
	return bits > 0 && bits < 1024
}

// wantMailDKIM checks one of our results against Mail::DKIM's verdict:
//
//	pass    → pass, or permerror when RFC 8301 forbids the signature
//	fail    → fail, or any non-pass under RFC 8301 (the key or algorithm
//	          is refused before the hashes are compared)
//	invalid → permerror or temperror (temperror for the DNS error cases)
func wantMailDKIM(upstream string, weakSig, dnsError bool, got verify.Status) bool {
	switch upstream {
	case "pass":
		if weakSig {
			return got == verify.StatusPermerror
		}
		return got == verify.StatusPass
	case "fail":
		if weakSig {
			return got != verify.StatusPass
		}
		return got == verify.StatusFail
	case "invalid":
		if dnsError {
			return got == verify.StatusTemperror
		}
		return got == verify.StatusPermerror || got == verify.StatusTemperror
	case "(not asserted)":
		return true
	}
	return false
}

// mailDKIMDeviations are the cases where RFC 6376 overrides Mail::DKIM's
// verdict (beyond the RFC 8301 mapping), with the verdict asserted instead.
var mailDKIMDeviations = map[string]struct {
	want verify.Status
	why  string
}{
	// Pre-standard (draft-ietf-dkim-base-01) signatures without v=, which
	// Mail::DKIM still accepts.
	"corpus/mine_ietf01_3.txt": {verify.StatusPermerror, "no v= tag: RFC 6376 §3.5 makes v= required and §6.1.1 requires PERMFAIL"},
	"corpus/mine_ietf01_4.txt": {verify.StatusPermerror, "no v= tag: RFC 6376 §3.5 makes v= required and §6.1.1 requires PERMFAIL"},
}

func TestConformanceMailDKIM(t *testing.T) {
	dir := conformance.Dir(t, "dkim-mail-dkim")
	data, err := os.ReadFile(filepath.Join(dir, "expected.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []mailDKIMCase
	if err := yaml.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	r := fakeDNS(t, filepath.Join(dir, "FAKE_DNS.dat"))
	passed, failed := 0, 0
	for _, c := range cases {
		ok := t.Run(strings.TrimSuffix(filepath.Base(c.File), ".txt"), func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, c.File))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sigs, err := Verify(ctx, r, f, nil)
			if err != nil {
				t.Fatal(err)
			}
			var dkimSigs []int // indexes into c.Signatures of DKIM-Signature fields
			for i, s := range c.Signatures {
				if s.Type == "DKIM-Signature" {
					dkimSigs = append(dkimSigs, i)
				}
			}
			if len(sigs) != len(dkimSigs) {
				// DomainKeys-only messages (RFC 4870) have no DKIM result.
				t.Fatalf("%d results for %d DKIM-Signature fields", len(sigs), len(dkimSigs))
			}
			for i, s := range sigs {
				meta := c.Signatures[dkimSigs[i]]
				upstream := c.Expected
				if c.ExpectedPerSignature != nil {
					upstream = c.ExpectedPerSignature[i]
				}
				if dev, ok := mailDKIMDeviations[c.File]; ok {
					t.Logf("asserting %s instead of upstream %s: %s", dev.want, upstream, dev.why)
					if s.Status != dev.want {
						t.Errorf("signature %d: got %s (%s), want %s", i+1, s.Status, s.Reason, dev.want)
					}
					continue
				}
				dnsErr := strings.HasPrefix(meta.Key, "DNS error")
				if !wantMailDKIM(upstream, weak(meta.A, meta.Key), dnsErr, s.Status) {
					t.Errorf("signature %d (a=%s key %s): got %s (%s; %v), upstream %s",
						i+1, meta.A, meta.Key, s.Status, s.Reason, s.Err, upstream)
				}
				if s.Reason == "" && s.Status != verify.StatusPass {
					t.Errorf("signature %d: %s without a reason", i+1, s.Status)
				}
			}
		})
		if ok {
			passed++
		} else {
			failed++
		}
	}
	t.Logf("dkim mail-dkim: %d passed, %d failed (%d of them asserted against RFC 6376 instead of upstream: mine_ietf01_3, mine_ietf01_4, no v= tag)",
		passed, failed, len(mailDKIMDeviations))
	if len(cases) != 79 {
		t.Errorf("%d cases in expected.yml, want 79", len(cases))
	}
}

// stalwartClock is the time stalwart's DKIM vectors are checked at.
const stalwartClock = 1667843664

// readStalwart splits a stalwart vector into its DNS records and the
// message (LF line ends; Verify converts them).
func readStalwart(t *testing.T, path string) (*dnstest.Resolver, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dns, msg, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok {
		t.Fatal("no blank line after the DNS records")
	}
	r := &dnstest.Resolver{TXT: map[string][]string{}}
	for _, line := range strings.Split(string(dns), "\n") {
		name, value, _ := strings.Cut(line, " ")
		r.TXT[name] = append(r.TXT[name], strings.TrimSpace(value))
	}
	return r, msg
}

// TestConformanceStalwartExpiry checks that 005 (x=1667930064) is
// expired at the wall clock: Options.Now decides.
func TestConformanceStalwartExpiry(t *testing.T) {
	dir := filepath.Join(conformance.Dir(t, "stalwart-mail-auth"), "dkim")
	r, msg := readStalwart(t, filepath.Join(dir, "005.txt"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sigs, err := Verify(ctx, r, bytes.NewReader(msg), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sigs {
		if s.Status != verify.StatusPermerror || s.Reason != "signature expired" {
			t.Errorf("%s: %s %q, want permerror \"signature expired\"", s.Selector, s.Status, s.Reason)
		}
	}
}

func TestConformanceStalwart(t *testing.T) {
	dir := filepath.Join(conformance.Dir(t, "stalwart-mail-auth"), "dkim")
	opts := &Options{Now: func() time.Time { return time.Unix(stalwartClock, 0) }}
	passed, failed := 0, 0
	for i := 1; i <= 6; i++ {
		name := "00" + strconv.Itoa(i)
		ok := t.Run(name, func(t *testing.T) {
			r, msg := readStalwart(t, filepath.Join(dir, name+".txt"))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sigs, err := Verify(ctx, r, bytes.NewReader(msg), opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(sigs) == 0 {
				t.Fatal("no results")
			}
			for j, s := range sigs {
				// 005 has x=1667930064, one day after the vector's clock:
				// it passes at that clock (Options.Now) as upstream says.
				want := verify.StatusPass
				if s.Status != want {
					t.Errorf("signature %d (d=%s s=%s a=%s): %s (%s; %v), want %s",
						j+1, s.Domain, s.Selector, s.Algorithm, s.Status, s.Reason, s.Err, want)
				}
			}
		})
		if ok {
			passed++
		} else {
			failed++
		}
	}
	t.Logf("dkim stalwart: %d passed, %d failed", passed, failed)
}
