package dkimsign

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/internal/dkimkey"
)

// pairs returns "d=/s=" of keys, for comparisons.
func pairs(keys []Key) []string {
	var out []string
	for _, k := range keys {
		s := k.Domain + "/" + k.Selector
		if k.Identity != "" {
			s += "/" + k.Identity
		}
		out = append(out, s)
	}
	return out
}

func TestTable(t *testing.T) {
	dir := t.TempDir()
	ek, rk := edKey(t), rsaKey(t, 2048)
	edFile := writeKey(t, dir, "ed.pem", ek, 0o600)
	rsaFile := writeKey(t, dir, "rsa.pem", rk, 0o400)
	tab, warnings, err := Load([]Entry{
		{Domain: "example.com", Selector: "rsa", KeyFile: rsaFile},
		{Domain: "Example.COM.", Selector: "ed", KeyFile: edFile},
		{Domain: "*.example.com", Selector: "sub", KeyFile: edFile},
		{Domain: "*.deep.example.com", Selector: "deep", KeyFile: edFile},
		{Domain: "other.org", Selector: "o", KeyFile: edFile},
		{Domain: "bücher.example", Selector: "idn", KeyFile: edFile},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	for from, want := range map[string][]string{
		"alice@example.com":                     {"example.com/rsa", "example.com/ed"},
		"Alice <ALICE@Example.Com>":             {"example.com/rsa", "example.com/ed"},
		"a@mail.example.com":                    {"example.com/sub"},
		"a@x.deep.example.com":                  {"deep.example.com/deep"},
		"a@deep.example.com":                    {"example.com/sub"},
		"a@other.org":                           {"other.org/o"},
		"a@sub.other.org":                       nil, // no *.other.org entry
		"a@example.net":                         nil,
		"a@BÜCHER.example":                      {"xn--bcher-kva.example/idn"},
		"a@xn--bcher-kva.example":               {"xn--bcher-kva.example/idn"},
		"a@notexample.com":                      nil,
		"not an address":                        nil,
		"a@b@example.com":                       nil,
		"\"Alice, Bob\" <bob@example.com>, c@x": {"example.com/rsa", "example.com/ed"},
	} {
		if got := pairs(tab.Keys(from)); !slices.Equal(got, want) {
			t.Errorf("%q: got %v, want %v", from, got, want)
		}
	}
	// The catch-all signs unknown domains with their own d=, with a warning.
	tab, warnings, err = Load([]Entry{{Domain: "example.com", Selector: "a", KeyFile: edFile}, {Domain: "*", Selector: "all", KeyFile: edFile}})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "catch-all") {
		t.Errorf("warnings: %v", warnings)
	}
	if got := pairs(tab.Keys("a@example.org")); !slices.Equal(got, []string{"example.org/all"}) {
		t.Errorf("catch-all: %v", got)
	}
	if got := pairs(tab.Keys("a@example.com")); !slices.Equal(got, []string{"example.com/a"}) {
		t.Errorf("own keys first: %v", got)
	}
}

func TestTableErrors(t *testing.T) {
	dir := t.TempDir()
	ek := edKey(t)
	good := writeKey(t, dir, "ok.pem", ek, 0o600)
	for _, tc := range []struct {
		name  string
		entry Entry
		want  error
	}{
		{"group readable", Entry{Domain: "example.com", Selector: "s", KeyFile: writeKey(t, dir, "g.pem", ek, 0o640)}, dkimkey.ErrKeyPermissions},
		{"world readable", Entry{Domain: "example.com", Selector: "s", KeyFile: writeKey(t, dir, "w.pem", ek, 0o604)}, dkimkey.ErrKeyPermissions},
		{"missing file", Entry{Domain: "example.com", Selector: "s", KeyFile: filepath.Join(dir, "none.pem")}, os.ErrNotExist},
		{"bad domain", Entry{Domain: "exa_mple .com", Selector: "s", KeyFile: good}, ErrTable},
		{"invalid IDN", Entry{Domain: "ex\u00e4mple-.com", Selector: "s", KeyFile: good}, ErrTable},
		{"bad selector", Entry{Domain: "example.com", Selector: "", KeyFile: good}, ErrTable},
		{"no key file", Entry{Domain: "example.com", Selector: "s"}, ErrTable},
		{"rsa 1023", Entry{Domain: "example.com", Selector: "s", KeyFile: writeKey(t, dir, "small.pem", rsaKey(t, 1023), 0o600)}, ErrTable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Load([]Entry{tc.entry})
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrTable) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.entry.KeyFile != "" && !strings.Contains(err.Error(), "entry 1") {
				t.Errorf("error does not name the entry: %v", err)
			}
		})
	}
	if _, _, err := Load([]Entry{{Domain: "example.com", Selector: "s", KeyFile: good}, {Domain: "EXAMPLE.com", Selector: "S", KeyFile: good}}); !errors.Is(err, ErrTable) {
		t.Errorf("duplicate: %v", err)
	}
	// RFC 8301 §3.2: 1024 bits are accepted with a warning.
	_, warnings, err := Load([]Entry{{Domain: "example.com", Selector: "s", KeyFile: writeKey(t, dir, "k1024.pem", rsaKey(t, 1024), 0o600)}})
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "1024 bits") {
		t.Errorf("1024-bit key: %v %v", warnings, err)
	}
}
