package spf_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/conformance"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/spf"
)

// The openspf test suite (../shared/conformance/spf, see its README): every
// case of rfc7208-tests.yml must pass; rfc4408-tests.yml, written for the
// obsoleted RFC 4408, is run for information only.

// suiteCounts collects the tallies (passed, failed) that TestMain prints
// after the run.
var (
	suiteMu     sync.Mutex
	suiteCounts = map[string][2]int{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	// Printed here, after the test output, so that the line shows in a
	// plain "go test" run in this directory as well as with -v.
	suiteMu.Lock()
	for _, name := range []string{"rfc7208", "rfc4408"} {
		if c, ok := suiteCounts[name]; ok {
			extra := ""
			if name == "rfc4408" {
				extra = " (informational, RFC 4408 semantics)"
			}
			fmt.Printf("spf %s: %d passed, %d failed%s\n", name, c[0], c[1], extra)
		}
	}
	suiteMu.Unlock()
	os.Exit(code)
}

// explanationCaseFold lists the cases whose explanation is compared
// without regard to case, and why.
var explanationCaseFold = map[string]string{
	// The suite expects the nibbles of %{ir} for CAFE:BABE::1 in upper case
	// (the case of the address as the suite writes it). RFC 7208 §7.3 says
	// %{i} of an IPv6 address is its nibbles in dot-format, and the §7.4
	// example expands 2001:db8::cb01 to lower-case nibbles, which is what
	// this package produces; DNS names are case-insensitive.
	"v-macro-ip6": "RFC 7208 §7.4",
}

type suiteScenario struct {
	Description string               `yaml:"description"`
	Tests       map[string]suiteCase `yaml:"tests"`
	Zonedata    map[string][]any     `yaml:"zonedata"`
}

type suiteCase struct {
	Host        string  `yaml:"host"`
	HELO        string  `yaml:"helo"`
	MailFrom    string  `yaml:"mailfrom"`
	Result      any     `yaml:"result"` // a result, or a list of acceptable ones
	Explanation *string `yaml:"explanation"`
	Description string  `yaml:"description"`
}

func loadSuite(t *testing.T, file string) []suiteScenario {
	t.Helper()
	f, err := os.Open(filepath.Join(conformance.Dir(t, "spf"), file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []suiteScenario
	dec := yaml.NewDecoder(f)
	for {
		var s suiteScenario
		if err := dec.Decode(&s); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, s)
	}
	return out
}

// suiteZone builds the fake DNS of a scenario as the suite's README says:
// SPF records are served as TXT unless the name has TXT entries ("TXT:
// NONE" meaning none), and a bare TIMEOUT makes every query for a type
// without records time out.
func suiteZone(t testing.TB, zonedata map[string][]any) *dnstest.Resolver {
	z := &dnstest.Resolver{
		TXT:       map[string][]string{},
		A:         map[string][]string{},
		AAAA:      map[string][]string{},
		MX:        map[string][]dnscache.MX{},
		PTR:       map[string][]string{},
		CNAME:     map[string]string{},
		FailEmpty: map[string]dnstest.Failure{},
	}
	for rawName, rrs := range zonedata {
		name := strings.ToLower(strings.TrimSuffix(rawName, "."))
		hasTXT := false
		var spfs []string
		for _, rr := range rrs {
			if s, ok := rr.(string); ok && s == "TIMEOUT" {
				z.FailEmpty[name] = dnstest.Timeout
				continue
			}
			m, ok := rr.(map[string]any)
			if !ok {
				t.Fatalf("zone %s: unexpected entry %#v", rawName, rr)
			}
			for typ, v := range m {
				switch typ {
				case "TXT":
					hasTXT = true
					if v == "NONE" {
						if z.TXT[name] == nil {
							z.TXT[name] = []string{} // the name exists, without TXT
						}
						continue
					}
					z.TXT[name] = append(z.TXT[name], suiteText(t, v))
				case "SPF":
					spfs = append(spfs, suiteText(t, v))
				case "A":
					z.A[name] = append(z.A[name], fmt.Sprint(v))
				case "AAAA":
					z.AAAA[name] = append(z.AAAA[name], fmt.Sprint(v))
				case "MX":
					l, ok := v.([]any)
					if !ok || len(l) != 2 {
						t.Fatalf("zone %s: bad MX %#v", rawName, v)
					}
					pref, _ := l[0].(int)
					z.MX[name] = append(z.MX[name], dnscache.MX{Pref: uint16(pref), Host: strings.TrimSuffix(fmt.Sprint(l[1]), ".")})
				case "PTR":
					z.PTR[name] = append(z.PTR[name], fmt.Sprint(v))
				case "CNAME":
					z.CNAME[name] = fmt.Sprint(v)
				default:
					t.Fatalf("zone %s: unknown type %s", rawName, typ)
				}
			}
		}
		if !hasTXT && len(spfs) > 0 {
			z.TXT[name] = append(z.TXT[name], spfs...)
		}
	}
	return z
}

// suiteText returns a TXT value: a string, or the strings of one record,
// joined without separator (RFC 7208 §3.3).
func suiteText(t testing.TB, v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		var b strings.Builder
		for _, s := range v {
			b.WriteString(fmt.Sprint(s))
		}
		return b.String()
	}
	t.Fatalf("bad TXT value %#v", v)
	return ""
}

func (c suiteCase) acceptable() []verify.Status {
	switch v := c.Result.(type) {
	case string:
		return []verify.Status{verify.Status(v)}
	case []any:
		var out []verify.Status
		for _, r := range v {
			out = append(out, verify.Status(fmt.Sprint(r)))
		}
		return out
	}
	return nil
}

// runSuiteCase evaluates one case as the reference driver does: one
// check_host() of the MAIL FROM identity (postmaster@HELO for an empty
// mailfrom), with the default explanation "DEFAULT". It returns what is
// wrong, or "", and a note when an alternative the suite accepts was
// given instead of its preferred result.
func runSuiteCase(name string, c suiteCase, zone dnscache.Resolver) (problem, note string) {
	ip, err := netip.ParseAddr(c.Host)
	if err != nil {
		return fmt.Sprintf("bad host %q: %v", c.Host, err), ""
	}
	local, domain := spf.SplitSender(c.MailFrom)
	res := spf.VerifyWithOptions(context.Background(), zone, spf.Args{
		IP:             ip,
		MailFromLocal:  local,
		MailFromDomain: domain,
		HELO:           c.HELO,
		Receiver:       "receiver.example.org",
	}, &spf.Options{
		DefaultExplanation: "DEFAULT",
		Now:                func() time.Time { return time.Unix(1700000000, 0) },
	})
	want := c.acceptable()
	if !slices.Contains(want, res.Status) {
		return fmt.Sprintf("result %s (mechanism %q, err %v), want one of %v", res.Status, res.Mechanism, res.Err, want), ""
	}
	if res.Status != want[0] {
		note = fmt.Sprintf("%s accepted, the suite prefers %s (err %v)", res.Status, want[0], res.Err)
	}
	if c.Explanation != nil {
		got, exp := res.Explanation, *c.Explanation
		_, fold := explanationCaseFold[name]
		if got != exp && !(fold && strings.EqualFold(got, exp)) {
			return fmt.Sprintf("explanation %q, want %q", got, exp), ""
		}
		if got != exp {
			note = fmt.Sprintf("explanation %q compared without case to %q (%s)", got, exp, explanationCaseFold[name])
		}
	}
	return "", note
}

func TestRFC7208Suite(t *testing.T) {
	t.Parallel()
	scenarios := loadSuite(t, "rfc7208-tests.yml")
	counts := &[2]int{}
	for _, s := range scenarios {
		zone := suiteZone(t, s.Zonedata)
		names := make([]string, 0, len(s.Tests))
		for name := range s.Tests {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			c := s.Tests[name]
			ok := t.Run(s.Description+"/"+name, func(t *testing.T) {
				msg, note := runSuiteCase(name, c, zone)
				if msg != "" {
					t.Errorf("%s (%s): %s", name, c.Description, msg)
				}
				if note != "" {
					t.Log(note)
				}
			})
			if ok {
				counts[0]++
			} else {
				counts[1]++
			}
		}
	}
	if n := counts[0] + counts[1]; n != 203 {
		t.Errorf("ran %d cases, the suite has 203", n)
	}
	suiteMu.Lock()
	suiteCounts["rfc7208"] = *counts
	suiteMu.Unlock()
}

// TestRFC4408Suite runs the RFC 4408 edition of the suite for information:
// RFC 7208 changed some answers, so mismatches are logged, not failures.
func TestRFC4408Suite(t *testing.T) {
	t.Parallel()
	scenarios := loadSuite(t, "rfc4408-tests.yml")
	counts := &[2]int{}
	for _, s := range scenarios {
		zone := suiteZone(t, s.Zonedata)
		for name, c := range s.Tests {
			if msg, _ := runSuiteCase(name, c, zone); msg != "" {
				counts[1]++
				t.Logf("rfc4408 %s/%s: %s", s.Description, name, msg)
			} else {
				counts[0]++
			}
		}
	}
	suiteMu.Lock()
	suiteCounts["rfc4408"] = *counts
	suiteMu.Unlock()
}
