package arc

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/internal/canon"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/internal/testsupport/conformance"
	"github.com/authmilter/authmilter/verify"
)

type signScenario struct {
	Description string            `yaml:"description"`
	Domain      string            `yaml:"domain"`
	Sel         string            `yaml:"sel"`
	PrivateKey  string            `yaml:"privatekey"`
	TXTRecords  map[string]string `yaml:"txt-records"`
	Tests       yaml.Node         `yaml:"tests"`
}

type signCase struct {
	Message    string `yaml:"message"`
	T          int64  `yaml:"t"`
	SigHeaders string `yaml:"sig-headers"`
	SrvID      string `yaml:"srv-id"`
	AAR        string `yaml:"AAR"`
	AMS        string `yaml:"AMS"`
	AS         string `yaml:"AS"`
}

// splitMessage reads a whole message into its header and its CRLF body.
func splitMessage(t testing.TB, msg string) ([]message.Field, []byte) {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(msg))
	header, err := message.ReadHeader(br, message.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	if err := message.BodyCRLF(br, 4096, func(p []byte) error { body.Write(p); return nil }); err != nil {
		t.Fatal(err)
	}
	return header, body.Bytes()
}

// ownResults gathers this hop's results as the suite defines them: every
// Authentication-Results field of authserv-id srvID, its results in order,
// joined with "; ". It also returns the arc= result found there.
func ownResults(header []message.Field, srvID string) (results, arc string) {
	var all []string
	for _, f := range header {
		if !strings.EqualFold(f.Name, "Authentication-Results") {
			continue
		}
		id, rest, _ := strings.Cut(unfold(f.Value()), ";")
		if strings.TrimSpace(id) != srvID {
			continue
		}
		for _, r := range strings.Split(rest, ";") {
			if r = strings.TrimSpace(r); r != "" {
				all = append(all, r)
				if m, v, ok := strings.Cut(r, "="); ok && strings.TrimSpace(m) == "arc" {
					arc = strings.Fields(v)[0]
				}
			}
		}
	}
	return strings.Join(all, "; "), arc
}

func noSpace(s string) string { return strings.Join(strings.Fields(s), "") }

// tagSet returns the tags of a value with all whitespace removed, as the
// upstream runner compares them.
func tagSet(s string) map[string]string {
	out := map[string]string{}
	for _, spec := range strings.Split(noSpace(s), ";") {
		if k, v, ok := strings.Cut(spec, "="); ok {
			out[k] = v
		}
	}
	return out
}

// compareTags compares two tag sets; b= only when withB.
func compareTags(got, want map[string]string, withB bool) error {
	var diffs []string
	for k, w := range want {
		if k == "b" && !withB {
			continue
		}
		if got[k] != w {
			diffs = append(diffs, fmt.Sprintf("%s=%q want %q", k, got[k], w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "extra tag "+k)
		}
	}
	if diffs != nil {
		return errors.New(strings.Join(diffs, "; "))
	}
	return nil
}

func TestSigningSuite(t *testing.T) {
	dir := conformance.Dir(t, "arc")
	data, err := os.ReadFile(filepath.Join(dir, "arc-draft-sign-tests.yml"))
	if err != nil {
		t.Fatal(err)
	}
	passed, failed, exactB := 0, 0, 0
	for _, sc := range decodeAll[signScenario](t, data) {
		// The suite's private key, read from the suite file at test time
		// (RSA 1024: ParseKey, not LoadKey, which wants 2048 bits).
		key, err := ParseKey([]byte(sc.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		// The signing suite writes its key record as a YAML literal block:
		// the line breaks fall inside the base64 of p= and stand for the
		// boundaries of the record's strings, which DNS joins without
		// separator (RFC 6376 §3.6.2.2).
		records := map[string]string{}
		for n, v := range sc.TXTRecords {
			records[n] = strings.ReplaceAll(strings.TrimSpace(v), "\n", "")
		}
		r := resolverFor(records)
		names, tests := cases[signCase](t, &sc.Tests)
		for _, name := range names {
			tc := tests[name]
			ok, exact := runSignCase(t, name, sc, tc, key, r)
			if ok {
				passed++
			} else {
				failed++
			}
			if exact {
				exactB++
			}
		}
	}
	if passed+failed != 17 {
		t.Errorf("suite has %d signing cases, want 17", passed+failed)
	}
	fmt.Printf("arc signing: %d passed, %d failed\n", passed, failed)
	// AMS b= values match the suite in every case (checked above). The AS
	// b= values do not: they cover the AAR and AMS as dkimpy laid them
	// out in 2018, which the suite does not preserve byte for byte (we
	// tried the plausible layouts), so the AS is compared on every other
	// tag and verified with our validator instead, as the suite README
	// allows.
	fmt.Printf("arc signing: AMS b= exact in all cases; AS b= exact in %d of %d sealed cases (others verified independently)\n", exactB, passed+failed-1)
}

func runSignCase(t *testing.T, name string, sc signScenario, tc signCase, key crypto.Signer, r dnscache.Resolver) (ok, exact bool) {
	t.Helper()
	msg := crlf(tc.Message)
	header, body := splitMessage(t, msg)
	v := NewValidator(context.Background(), r, header, nil)
	v.Write(body)
	chain := v.Close()
	results, arcResult := ownResults(header, tc.SrvID)
	if arcResult != "" && string(chain.Status) != strings.ToLower(arcResult) {
		t.Errorf("%s: our validation says %s (%s), the hop's A-R says arc=%s", name, chain.Status, chain.Reason, arcResult)
		return false, false
	}
	s := &Sealer{
		Domain: sc.Domain, Selector: sc.Sel, Key: key,
		Headers: strings.Split(tc.SigHeaders, ":"),
		Now:     func() time.Time { return time.Unix(tc.T, 0) },
	}
	fields, err := s.Seal(header, v.BodyHash(), chain, tc.SrvID, results)
	if tc.AS == "" && tc.AMS == "" && tc.AAR == "" {
		// no_additional_sig: a chain at cv=fail is not extended.
		if !errors.Is(err, ErrChainFailed) {
			t.Errorf("%s: got %v, want ErrChainFailed", name, err)
			return false, false
		}
		return true, false
	}
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return false, false
	}
	for _, f := range fields {
		if n := maxLineLen(f.Raw); n > maxLine {
			t.Errorf("%s: %s has a line of %d columns", name, f.Name, n)
		}
	}
	if got := noSpace(fields[2].Value()); got != noSpace(tc.AAR) {
		t.Errorf("%s: AAR\n got %s\nwant %s", name, got, noSpace(tc.AAR))
		return false, false
	}
	gotAMS, gotAS := tagSet(fields[1].Value()), tagSet(fields[0].Value())
	wantAMS, wantAS := tagSet(tc.AMS), tagSet(tc.AS)
	exact = compareTags(gotAS, wantAS, true) == nil
	if gotAMS["b"] != wantAMS["b"] {
		// The AMS covers only its own header fields and itself, whose
		// relaxed form our layout reproduces: b= must match exactly.
		t.Errorf("%s: AMS b= differs from the suite's", name)
		return false, false
	}
	if err := compareTags(gotAMS, wantAMS, false); err != nil {
		t.Errorf("%s: AMS: %v", name, err)
		return false, false
	}
	if err := compareTags(gotAS, wantAS, false); err != nil {
		t.Errorf("%s: AS: %v", name, err)
		return false, false
	}
	if !exact {
		t.Logf("%s: AS b= differs from the suite (layout), checking the seal independently", name)
	}
	// Verify what we produced with our own validator.
	sealed := append(append([]message.Field{}, fields...), header...)
	if err := verifyNewSet(r, sealed, body); err != nil {
		t.Errorf("%s: produced set does not verify: %v", name, err)
		return false, exact
	}
	return true, exact
}

func maxLineLen(raw []byte) int {
	n := 0
	for _, l := range strings.Split(string(raw), "\r\n") {
		n = max(n, len(l))
	}
	return n
}

// verifyNewSet checks the topmost ARC Set of header cryptographically:
// through full validation for cv=none/pass, and directly for cv=fail,
// whose seal covers only its own set (RFC 8617 §5.1.2) and which §5.2
// would reject without looking at the signatures.
func verifyNewSet(r dnscache.Resolver, header []message.Field, body []byte) error {
	s, err := parseSeal(header[0], maxInstanceLimit)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if s.cv != "fail" {
		v := NewValidator(ctx, r, header, nil)
		v.Write(body)
		if res := v.Close(); res.Status != verify.StatusPass {
			return fmt.Errorf("validation: %s (%s)", res.Status, res.Reason)
		}
		return nil
	}
	m, err := parseAMS(header[1], maxInstanceLimit)
	if err != nil {
		return err
	}
	a, err := parseAAR(header[2], maxInstanceLimit)
	if err != nil {
		return err
	}
	h := canon.NewBodyHasher(canon.Relaxed, crypto.SHA256, -1)
	h.Write(body)
	v := &Validator{ctx: ctx, r: r, header: header,
		hashers: map[bodyKey]*canon.BodyHasher{{canon.Relaxed, -1}: h},
		keys:    map[string]*keyFuture{},
		aars:    []*aar{a}, amss: []*ams{m}, seals: []*seal{s},
	}
	v.lookup(m.selector, m.domain)
	v.lookup(s.selector, s.domain)
	if err := v.verifyAMS(m); err != nil {
		return err
	}
	return v.verifySeal(1)
}
