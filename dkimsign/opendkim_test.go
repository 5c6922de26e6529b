package dkimsign

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/internal/dkimkey"
)

// odFixture writes a KeyTable with keys k1..k5 (d=example.com, s=s1..s5)
// and k6 (d=%, s=s6), all one RSA key file (OpenDKIM 2.11 signs with RSA
// keys only), and returns its path.
func odFixture(t *testing.T, dir string) string {
	t.Helper()
	keyFile := writeKey(t, dir, "key.pem", rsaKey(t, 2048), 0o600)
	var kt strings.Builder
	kt.WriteString("# key table written by the test\n\n")
	for i := 1; i <= 5; i++ {
		kt.WriteString("k" + string(rune('0'+i)) + "\texample.com:s" + string(rune('0'+i)) + ":" + keyFile + "   # comment\n")
	}
	kt.WriteString("k6 %:s6:./key.pem\n")
	p := filepath.Join(dir, "KeyTable")
	if err := os.WriteFile(p, []byte(kt.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func loadOD(t *testing.T, dir, kind, signingTable string, multiple bool) *OpenDKIM {
	t.Helper()
	st := filepath.Join(dir, "SigningTable")
	if err := os.WriteFile(st, []byte(signingTable), 0o644); err != nil {
		t.Fatal(err)
	}
	o, _, err := LoadOpenDKIM("file:"+filepath.Join(dir, "KeyTable"), kind+":"+st, multiple)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// The decisions below are those the opendkim 2.11 daemon makes with the
// same tables (see interop_test.go, which compares with it directly).
func TestOpenDKIMLookups(t *testing.T) {
	dir := t.TempDir()
	odFixture(t, dir)
	for _, tc := range []struct {
		name, kind, table, from string
		multiple                bool
		want                    []string
	}{
		{"file: full address first", "file", "foo.example.com k2\nuser@foo.example.com k1\n", "user@foo.example.com", false, []string{"example.com/s1"}},
		{"file: host before parents", "file", "user@.example.com k2\n.example.com k1\nfoo.example.com k4\n", "user@foo.example.com", false, []string{"example.com/s4"}},
		{"file: parents interleaved", "file", "user@.com k2\n.example.com k1\n", "user@foo.example.com", false, []string{"example.com/s1"}},
		{"file: user@parent before parent", "file", ".com k2\nuser@.example.com k1\n", "user@foo.example.com", false, []string{"example.com/s1"}},
		{"file: user@*", "file", "user@* k3\n* k4\n", "user@foo.example.com", false, []string{"example.com/s3"}},
		{"file: *", "file", "user@* k3\n* k4\n", "other@foo.example.com", false, []string{"example.com/s4"}},
		{"file: keys ignore case", "file", "EXAMPLE.ORG k5\n", "User@Example.Org", false, []string{"example.com/s5"}},
		{"file: no glob", "file", "*@foo.example.com k1\n", "k@foo.example.com", false, nil},
		{"file: apex row misses subdomain", "file", "example.com k1\n", "k@foo.example.com", false, nil},
		{"file: multiple", "file", "user@.com k2\n* k4\n", "user@foo.example.com", true, []string{"example.com/s2", "example.com/s4"}},
		{"file: % domain", "file", "k@foo.example.com k6\n", "k@foo.example.com", false, []string{"foo.example.com/s6"}},
		{"file: signer", "file", "foo.example.com k1:sig@foo.example.com\n", "k@foo.example.com", false, []string{"example.com/s1/sig@foo.example.com"}},
		{"file: signer % ", "file", "foo.example.com k1:sig@%\n", "k@foo.example.com", false, []string{"example.com/s1/sig@foo.example.com"}},
		{"file: conflicting signer left out", "file", "foo.example.com k1:sig@other.org\n", "k@foo.example.com", false, []string{"example.com/s1"}},
		{"file: % key name not in table", "file", "foo.example.com %\n", "k@foo.example.com", false, nil},
		{"refile: first match", "refile", "*@*.example.com k1\n*@foo.example.com k2\nuser@* k3\n* k4\n", "user@foo.example.com", false, []string{"example.com/s1"}},
		{"refile: whole address", "refile", "*@example.com k1\n", "user@foo.example.com", false, nil},
		{"refile: star spans dots", "refile", "*example.com k1\n", "user@foo.example.com", false, []string{"example.com/s1"}},
		{"refile: dot is literal", "refile", "user@foo.example.c.m k1\n", "user@foo.example.com", false, nil},
		{"refile: question mark is literal", "refile", "user@foo.example.co? k1\n", "user@foo.example.com", false, nil},
		{"refile: case", "refile", "*@FOO.example.com k6\n", "User@Foo.Example.com", false, []string{"foo.example.com/s6"}},
		{"refile: multiple", "refile", "*@*.example.com k1\n*@foo.example.com k2\n", "user@foo.example.com", true, []string{"example.com/s1", "example.com/s2"}},
		{"refile: no match", "refile", "*@example.org k1\n", "user@example.com", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := loadOD(t, dir, tc.kind, tc.table, tc.multiple)
			local, domain, ok := SplitFrom(tc.from)
			if !ok {
				t.Fatalf("SplitFrom(%q)", tc.from)
			}
			if got := pairs(o.Keys(local, domain)); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOpenDKIMInlineKey(t *testing.T) {
	dir := t.TempDir()
	der, err := x509.MarshalPKCS8PrivateKey(edKey(t))
	if err != nil {
		t.Fatal(err)
	}
	kt := filepath.Join(dir, "KeyTable")
	st := filepath.Join(dir, "SigningTable")
	if err := os.WriteFile(kt, []byte("k example.com:inline:"+base64.StdEncoding.EncodeToString(der)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(st, []byte("example.com k\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A KeyTable holding a key must be private like a key file.
	if _, _, err := LoadOpenDKIM(kt, "file:"+st, false); !errors.Is(err, dkimkey.ErrKeyPermissions) {
		t.Fatalf("readable KeyTable with a key: %v", err)
	}
	if err := os.Chmod(kt, 0o600); err != nil {
		t.Fatal(err)
	}
	o, _, err := LoadOpenDKIM(kt, "file:"+st, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := pairs(o.Keys("a", "example.com")); !slices.Equal(got, []string{"example.com/inline"}) {
		t.Errorf("got %v", got)
	}
}

func TestOpenDKIMErrors(t *testing.T) {
	dir := t.TempDir()
	keyFile := writeKey(t, dir, "key.pem", edKey(t), 0o600)
	open := writeKey(t, dir, "open.pem", edKey(t), 0o644)
	for _, tc := range []struct {
		name, kt, st, stKind string
		want                 error
		where                string
	}{
		{"missing key name", "k1 example.com:s1:" + keyFile + "\n", "example.com k9\n", "file", ErrOpenDKIM, "SigningTable:1"},
		{"two fields", "k1 example.com:s1\n", "example.com k1\n", "file", ErrOpenDKIM, "KeyTable:1"},
		{"readable key file", "\n# c\nk1 example.com:s1:" + open + "\n", "example.com k1\n", "file", dkimkey.ErrKeyPermissions, "KeyTable:3"},
		{"percent path", "k1 example.com:s1:/etc/keys/%.pem\n", "example.com k1\n", "file", ErrOpenDKIM, "KeyTable:1"},
		{"not a key", "k1 example.com:s1:notbase64!\n", "example.com k1\n", "file", ErrOpenDKIM, "KeyTable:1"},
		{"no value", "k1 example.com:s1:" + keyFile + "\n", "example.com\n", "refile", ErrOpenDKIM, "SigningTable:1"},
		{"bad selector", "k1 example.com:s 1:" + keyFile + "\n", "example.com k1\n", "file", ErrOpenDKIM, "KeyTable:1"},
		{"duplicate key name", "k1 example.com:s1:" + keyFile + "\nk1 example.com:s2:" + keyFile + "\n", "example.com k1\n", "file", ErrOpenDKIM, "KeyTable:2"},
		{"signer not an address", "k1 example.com:s1:" + keyFile + "\n", "example.com k1:%\n", "file", ErrOpenDKIM, "SigningTable:1"},
		{"unsupported data set", "", "", "csl", ErrOpenDKIM, "csl:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kt := filepath.Join(dir, "KeyTable")
			st := filepath.Join(dir, "SigningTable")
			if err := os.WriteFile(kt, []byte(tc.kt), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(st, []byte(tc.st), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadOpenDKIM("file:"+kt, tc.stKind+":"+st, false)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.where) {
				t.Errorf("got %v, want %v naming %s", err, tc.want, tc.where)
			}
		})
	}
}

func TestWildMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "a@b", true}, {"a*", "a", true}, {"*@*.b.c", "x@y.b.c", true},
		{"*@*.b.c", "x@b.c", false}, {"a*b*c", "aXbYbZc", true}, {"a*b*c", "aXbYbZ", false},
		{"abc", "abd", false}, {"**", "x", true}, {"", "", true}, {"", "x", false},
	} {
		if got := wildMatch(tc.p, tc.s); got != tc.want {
			t.Errorf("wildMatch(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}

// TestKeyTableULabelDomain: a KeyTable row whose domain is written in
// U-labels signs with its A-label form as d= (RFC 8616 §4), as
// dkim.sign.keys does, instead of yielding a key that Sign refuses.
func TestKeyTableULabelDomain(t *testing.T) {
	rows, err := ParseKeyTable([]byte("k1 Bücher.example:s1:/etc/dkim/k1.pem\n"), "KeyTable")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rows[0].Domain, "xn--bcher-kva.example"; got != want {
		t.Fatalf("domain %q, want %q", got, want)
	}
	dir := t.TempDir()
	keyFile := writeKey(t, dir, "key.pem", rsaKey(t, 2048), 0o600)
	kt := filepath.Join(dir, "KeyTable")
	st := filepath.Join(dir, "SigningTable")
	if err := os.WriteFile(kt, []byte("k1 bücher.example:s1:"+keyFile+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(st, []byte("* k1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o, _, err := LoadOpenDKIM("file:"+kt, "refile:"+st, false)
	if err != nil {
		t.Fatal(err)
	}
	keys := o.Keys("a", "xn--bcher-kva.example")
	if len(keys) != 1 {
		t.Fatalf("%d keys", len(keys))
	}
	if _, err := Sign(nil, make([]byte, 32), keys, nil); err != nil {
		t.Fatalf("a KeyTable key in U-labels cannot sign: %v", err)
	}
}

// SigningTable keys and patterns written in U-labels match the A-label
// From domain every lookup uses (RFC 8616), in file: and refile: tables.
func TestSigningTableULabelPattern(t *testing.T) {
	dir := t.TempDir()
	keyFile := writeKey(t, dir, "key.pem", rsaKey(t, 2048), 0o600)
	kt := filepath.Join(dir, "KeyTable")
	if err := os.WriteFile(kt, []byte("k1 bücher.example:s1:"+keyFile+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ kind, table string }{
		{"file", "Bücher.example k1\n"},
		{"file", "info@bücher.example k1\n"},
		{"refile", "*@bücher.example k1\n"},
		{"refile", "*@*.bücher.example k1\n"},
	} {
		st := filepath.Join(t.TempDir(), "SigningTable")
		if err := os.WriteFile(st, []byte(tc.table), 0o644); err != nil {
			t.Fatal(err)
		}
		o, _, err := LoadOpenDKIM("file:"+kt, tc.kind+":"+st, false)
		if err != nil {
			t.Fatalf("%s %q: %v", tc.kind, tc.table, err)
		}
		from := "xn--bcher-kva.example"
		if strings.Contains(tc.table, "*.") {
			from = "mail." + from
		}
		if keys := o.Keys("info", from); len(keys) != 1 {
			t.Errorf("%s %q: %d keys for info@%s, want 1", tc.kind, tc.table, len(keys), from)
		}
		if keys := o.Keys("info", "other.example"); len(keys) != 0 {
			t.Errorf("%s %q: %d keys for other.example, want 0", tc.kind, tc.table, len(keys))
		}
	}
	if got := aLabelPattern("*@*.Bücher.example"); got != "*@*.xn--bcher-kva.example" {
		t.Errorf("aLabelPattern = %q", got)
	}
}
