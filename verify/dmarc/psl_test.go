package dmarc

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/publicsuffix"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/conformance"
)

// TestPSLConformance runs every case of the Public Suffix List test vectors
// (psl/tests.txt) against the PSL finder. Expected registrable domains in
// U-labels are compared in A-labels, the form this package works in (RFC
// 9989 §5.3.1). A failing case says whether the snapshot list beside the
// vectors agrees with them, i.e. whether x/net's embedded list is the cause.
func TestPSLConformance(t *testing.T) {
	dir := conformance.Dir(t, "psl")
	f, err := os.Open(filepath.Join(dir, "tests.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	snapshot := loadSnapshot(t, filepath.Join(dir, "public_suffix_list.dat"))

	passed, failed := 0, 0
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "//") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			t.Fatalf("tests.txt:%d: want 2 fields, got %q", line, text)
		}
		input, want := fields[0], fields[1]
		if input == "null" {
			input = ""
		}
		if want == "null" {
			want = ""
		} else if a, err := normalizeDomain(want); err == nil {
			want = a
		} else {
			t.Fatalf("tests.txt:%d: expected value %q: %v", line, want, err)
		}
		ok := t.Run(fmt.Sprintf("%d_%s", line, fields[0]), func(t *testing.T) {
			got, err := PSL{}.Registrable(input)
			if err != nil {
				got = ""
			}
			if got == want {
				return
			}
			why := "x/net/publicsuffix disagrees with the vectors"
			if snap := snapshot.registrable(input); snap == want {
				why = fmt.Sprintf("the snapshot list gives %q but x/net's embedded list (%s) differs", snap, publicsuffix.List)
			}
			t.Errorf("Registrable(%q) = %q, want %q: %s", fields[0], got, want, why)
		})
		if ok {
			passed++
		} else {
			failed++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if passed+failed == 0 {
		t.Fatal("tests.txt: no cases")
	}
	fmt.Printf("psl: %d passed, %d failed\n", passed, failed)
}

// TestPSLListDrift compares the rules of the snapshot list with x/net's
// embedded list and logs the rules on which they differ. It does not fail:
// the two are different dates of a list that changes weekly; the conformance
// vectors above are the gate.
func TestPSLListDrift(t *testing.T) {
	dir := conformance.Dir(t, "psl")
	snap := loadSnapshot(t, filepath.Join(dir, "public_suffix_list.dat"))
	var differ []string
	for _, rule := range snap.rules {
		probe, want := rule, rule
		switch {
		case strings.HasPrefix(rule, "!"):
			probe = rule[1:]
			want = probe[strings.IndexByte(probe, '.')+1:]
		case strings.HasPrefix(rule, "*."):
			probe = "probe" + rule[1:]
			want = probe
		}
		if _, excepted := snap.exceptions[probe]; excepted && !strings.HasPrefix(rule, "!") {
			continue
		}
		if got, _ := publicsuffix.PublicSuffix(probe); got != want {
			differ = append(differ, fmt.Sprintf("%s (x/net: public suffix of %s is %s)", rule, probe, got))
		}
	}
	t.Logf("PSL drift: %d of %d snapshot rules differ from x/net's list (%s)", len(differ), len(snap.rules), publicsuffix.List)
	for i, d := range differ {
		if i == 20 {
			t.Logf("  … and %d more", len(differ)-20)
			break
		}
		t.Logf("  %s", d)
	}
}

// snapshotList is a minimal reader of public_suffix_list.dat (both
// sections), used only to explain test failures and drift.
type snapshotList struct {
	rules      []string // A-labels, as written: "com", "*.ck", "!www.ck"
	set        map[string]bool
	exceptions map[string]bool
}

func loadSnapshot(t *testing.T, path string) *snapshotList {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := &snapshotList{set: map[string]bool{}, exceptions: map[string]bool{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rule := strings.TrimSpace(sc.Text())
		if rule == "" || strings.HasPrefix(rule, "//") {
			continue
		}
		rule = strings.Fields(rule)[0]
		prefix := ""
		switch {
		case strings.HasPrefix(rule, "!"):
			prefix, rule = "!", rule[1:]
		case strings.HasPrefix(rule, "*."):
			prefix, rule = "*.", rule[2:]
		}
		a, err := normalizeDomain(rule)
		if err != nil {
			t.Fatalf("%s: rule %q: %v", path, rule, err)
		}
		rule = prefix + a
		l.rules = append(l.rules, rule)
		l.set[rule] = true
		if prefix == "!" {
			l.exceptions[a] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return l
}

// registrable applies the list's algorithm (publicsuffix.org/list "Formal
// algorithm") to a domain; "" when there is none.
func (l *snapshotList) registrable(domain string) string {
	d, err := normalizeDomain(domain)
	if err != nil || domain == "" || strings.HasPrefix(domain, ".") {
		return ""
	}
	labels := strings.Split(d, ".")
	suffixLen := 1 // the implicit "*" rule
	for i := range labels {
		name := strings.Join(labels[i:], ".")
		n := len(labels) - i
		if l.exceptions[name] {
			suffixLen = n - 1
			break
		}
		if l.set[name] && n > suffixLen {
			suffixLen = n
		}
		if i > 0 && l.set["*."+name] && n+1 > suffixLen {
			suffixLen = n + 1
		}
	}
	if suffixLen >= len(labels) {
		return ""
	}
	return strings.Join(labels[len(labels)-suffixLen-1:], ".")
}

// TestPSLFinder covers the RFC 7489 finder's policy discovery.
func TestPSLFinder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		txt       map[string][]string
		author    string
		queries   []string
		org       string
		policy    string
		discarded []string
	}{
		{
			name:    "author record",
			txt:     map[string][]string{"_dmarc.mail.example.com": {"v=DMARC1; p=reject"}},
			author:  "mail.example.com",
			queries: []string{"_dmarc.mail.example.com"},
			org:     "example.com",
			policy:  "mail.example.com",
		},
		{
			name:    "falls back to the org domain",
			txt:     map[string][]string{"_dmarc.example.co.uk": {"v=DMARC1; p=reject"}},
			author:  "a.b.example.co.uk",
			queries: []string{"_dmarc.a.b.example.co.uk", "_dmarc.example.co.uk"},
			org:     "example.co.uk",
			policy:  "example.co.uk",
		},
		{
			name:    "author is the org domain: one query",
			author:  "example.com",
			queries: []string{"_dmarc.example.com"},
			org:     "example.com",
		},
		{
			name:    "private section: a tenant is its own org domain",
			txt:     map[string][]string{"_dmarc.github.io": {"v=DMARC1; p=reject"}},
			author:  "mail.someone.github.io",
			queries: []string{"_dmarc.mail.someone.github.io", "_dmarc.someone.github.io"},
			org:     "someone.github.io",
		},
		{
			name:    "public suffix author is its own org domain",
			author:  "co.uk",
			queries: []string{"_dmarc.co.uk"},
			org:     "co.uk",
		},
		{
			name:      "several records at the author end discovery (RFC 7489 §6.6.3 step 5)",
			txt:       map[string][]string{"_dmarc.mail.example.com": {"v=DMARC1; p=reject", "v=DMARC1; p=none"}, "_dmarc.example.com": {"v=DMARC1; p=reject"}},
			author:    "mail.example.com",
			queries:   []string{"_dmarc.mail.example.com"},
			org:       "example.com",
			discarded: []string{"mail.example.com"},
		},
		{
			name:      "several records at the org domain",
			txt:       map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject", "v=DMARC1; p=none"}},
			author:    "mail.example.com",
			queries:   []string{"_dmarc.mail.example.com", "_dmarc.example.com"},
			org:       "example.com",
			discarded: []string{"example.com"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &dnstest.Resolver{TXT: tc.txt}
			d, err := PSL{}.Discover(context.Background(), r, tc.author)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Queries(); !slices.Equal(got, prefixAll("TXT ", tc.queries)) {
				t.Errorf("queries\n got %q\nwant %q", got, prefixAll("TXT ", tc.queries))
			}
			if d.OrgDomain != tc.org {
				t.Errorf("org domain %q, want %q", d.OrgDomain, tc.org)
			}
			if d.PolicyDomain != tc.policy || (d.Record != nil) != (tc.policy != "") {
				t.Errorf("policy domain %q (record %v), want %q", d.PolicyDomain, d.Record != nil, tc.policy)
			}
			if !slices.Equal(d.Discarded, tc.discarded) {
				t.Errorf("discarded %q, want %q", d.Discarded, tc.discarded)
			}
		})
	}
}
