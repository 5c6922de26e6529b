package dkimsign

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseKeyTable(f *testing.F) {
	for _, s := range []string{
		"k1 example.com:sel:/etc/k.pem\n",
		"# c\n\nk2\t%:s2:./k.pem # x\n",
		"k3 example.com:s3:MC4CAQAwBQYDK2VwBCIEIA==\n",
		"k4 a:b\n", "k5", ":::: ::::\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := ParseKeyTable(data, "KeyTable")
		if err != nil {
			return
		}
		for _, r := range rows {
			if r.Name == "" || (r.KeyFile == "") == (r.Key == nil) || r.Line <= 0 {
				t.Fatalf("row %+v", r)
			}
			if r.Domain != "%" && !validDomain(r.Domain) || !validDomain(r.Selector) {
				t.Fatalf("row %+v", r)
			}
		}
	})
}

func FuzzParseSigningTable(f *testing.F) {
	for _, s := range []string{
		"*@example.com k1\n", "example.com k1:sig@example.com\n", "# c\n.example.com %\n", "x", "a b:c:d\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, refile bool) {
		rows, err := ParseSigningTable(data, "SigningTable", refile)
		if err != nil {
			return
		}
		for _, r := range rows {
			if r.Pattern == "" || r.KeyName == "" || strings.ContainsAny(r.Pattern, " \t#") {
				t.Fatalf("row %+v", r)
			}
		}
	})
}

// FuzzWildMatch compares wildMatch with the regular expression it stands
// for (opendkim(8): "*" matches anything, every other character itself).
func FuzzWildMatch(f *testing.F) {
	f.Add("*@*.example.com", "user@mail.example.com")
	f.Add("a*b*c", "aXbYbZc")
	f.Add("*.*", "..")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 256 || !utf8.ValidString(pattern) || !utf8.ValidString(s) {
			return // regexp works on UTF-8; table rows are ASCII
		}
		var re strings.Builder
		re.WriteString("^")
		for _, part := range strings.Split(pattern, "*") {
			re.WriteString(regexp.QuoteMeta(part))
			re.WriteString(".*")
		}
		expr := strings.TrimSuffix(re.String(), ".*") + "$"
		want := regexp.MustCompile("(?s)" + expr).MatchString(s)
		if got := wildMatch(pattern, s); got != want {
			t.Fatalf("wildMatch(%q, %q) = %v, regexp %s says %v", pattern, s, got, expr, want)
		}
	})
}

func FuzzSplitFrom(f *testing.F) {
	f.Add("Alice <alice@example.com>")
	f.Add("a@b@c")
	f.Add("\"x\" <@>")
	f.Fuzz(func(t *testing.T, from string) {
		local, domain, ok := SplitFrom(from)
		if ok && (local == "" || !validDomain(domain) || domain != strings.ToLower(domain)) {
			t.Fatalf("SplitFrom(%q) = %q, %q", from, local, domain)
		}
	})
}
