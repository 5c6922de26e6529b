package dkimsign

import (
	"bufio"
	"bytes"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/authmilter/authmilter/domain"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/authmilter/authmilter/internal/dkimkey"
)

// ErrOpenDKIM reports an OpenDKIM KeyTable or SigningTable that cannot be
// used; the message names the file and line.
var ErrOpenDKIM = errors.New("dkimsign: OpenDKIM table")

// maxTableFile bounds a table file read into memory.
const maxTableFile = 16 << 20

// OpenDKIM signs as OpenDKIM's KeyTable and SigningTable would
// (opendkim.conf(5)). It is immutable once loaded.
//
// SigningTable lookups, with the From address user@host:
//   - "refile:" tables: each row's pattern, where "*" matches any text and
//     everything else itself, case-insensitively, is matched against the
//     whole address, rows in file order;
//   - "file:" tables: the keys user@host, host, then for each parent
//     domain p of host (".example.com", ".com": the leading dot is
//     written in the table) user@p and p, then user@*, then *; keys
//     compare case-insensitively.
//
// The first match signs; with Multiple (OpenDKIM's MultipleSignatures)
// every match does, in that order. (OpenDKIM 2.11 with MultipleSignatures
// applies only the first and the last of three or more matches; this
// reader follows the documented behaviour.) A row's value is
// "keyname[:signer]": keyname "%" names the key by the From domain (when
// the KeyTable has no such key, the message is passed on unsigned, where
// OpenDKIM fails it);
// signer, with "%" replaced by the From domain, becomes i= when it lies in
// the signing domain and is left out otherwise.
//
// KeyTable rows are "keyname domain:selector:key": domain "%" signs with
// the From domain as d=; key is a file (a path starting with "/", "./" or
// "../", relative paths from the KeyTable's directory) or a base64 DER
// private key, in which case the KeyTable itself must not be readable by
// group or others. A "%" inside a key path is not supported.
type OpenDKIM struct {
	keys     map[string]Key // key name → key; Domain "" for "%"
	refile   bool
	patterns []odRow            // refile, in file order
	rows     map[string][]odRow // file: lower-case key → its row (first one wins)
	Multiple bool
}

type odRow struct {
	pattern string // refile: lower-case pattern
	keyName string
	signer  string
	line    int
}

// LoadOpenDKIM reads a KeyTable and a SigningTable given as OpenDKIM data
// set names: "file:/path", "refile:/path" (SigningTable only), or a path
// starting with "/". Key files are read now. Warnings (RSA keys under 2048
// bits) are returned for the caller to log.
func LoadOpenDKIM(keyTable, signingTable string, multiple bool) (*OpenDKIM, []string, error) {
	kpath, krefile, err := dataSet(keyTable)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: KeyTable: %w", ErrOpenDKIM, err)
	}
	if krefile {
		return nil, nil, fmt.Errorf("%w: KeyTable %s: a KeyTable is a file: data set, not refile:", ErrOpenDKIM, keyTable)
	}
	spath, srefile, err := dataSet(signingTable)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: SigningTable: %w", ErrOpenDKIM, err)
	}
	kdata, kmode, err := readTable(kpath)
	if err != nil {
		return nil, nil, err
	}
	sdata, _, err := readTable(spath)
	if err != nil {
		return nil, nil, err
	}
	kt, err := ParseKeyTable(kdata, kpath)
	if err != nil {
		return nil, nil, err
	}
	o := &OpenDKIM{keys: map[string]Key{}, refile: srefile, Multiple: multiple}
	var warnings []string
	for _, r := range kt {
		where := fmt.Sprintf("%s:%d (key %q)", kpath, r.Line, r.Name)
		var signer crypto.Signer
		if r.KeyFile != "" {
			p := r.KeyFile
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(kpath), p)
			}
			signer, err = dkimkey.LoadPrivateKey(p)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s: %w", ErrOpenDKIM, where, err)
			}
		} else {
			if err := dkimkey.CheckPrivateMode(kpath, kmode); err != nil {
				return nil, nil, fmt.Errorf("%w: %s holds a key: %w", ErrOpenDKIM, where, err)
			}
			signer = r.Key
		}
		if w, err := checkKeySize(signer, where); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrOpenDKIM, err)
		} else if w != "" {
			warnings = append(warnings, w)
		}
		d := r.Domain
		if d == "%" {
			d = ""
		}
		o.keys[r.Name] = Key{Domain: d, Selector: r.Selector, Signer: signer}
	}
	st, err := ParseSigningTable(sdata, spath, srefile)
	if err != nil {
		return nil, nil, err
	}
	if !srefile {
		o.rows = map[string][]odRow{}
	}
	for _, r := range st {
		if r.KeyName != "%" {
			if _, ok := o.keys[r.KeyName]; !ok {
				return nil, nil, fmt.Errorf("%w: %s:%d: key %q is not in the KeyTable %s", ErrOpenDKIM, spath, r.Line, r.KeyName, kpath)
			}
		}
		row := odRow{pattern: aLabelPattern(r.Pattern), keyName: r.KeyName, signer: r.Signer, line: r.Line}
		if srefile {
			o.patterns = append(o.patterns, row)
		} else if _, dup := o.rows[row.pattern]; !dup {
			o.rows[row.pattern] = []odRow{row}
		}
	}
	return o, warnings, nil
}

// dataSet parses an OpenDKIM data set name (opendkim(8), DATA SETS).
func dataSet(spec string) (path string, refile bool, err error) {
	switch {
	case strings.HasPrefix(spec, "file:"):
		return strings.TrimPrefix(spec, "file:"), false, nil
	case strings.HasPrefix(spec, "refile:"):
		return strings.TrimPrefix(spec, "refile:"), true, nil
	case strings.HasPrefix(spec, "/"):
		return spec, false, nil
	}
	return "", false, fmt.Errorf("%q: only file: and refile: data sets (or a path starting with /) are supported", spec)
}

func readTable(path string) ([]byte, os.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrOpenDKIM, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrOpenDKIM, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTableFile+1))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s: %w", ErrOpenDKIM, path, err)
	}
	if len(data) > maxTableFile {
		return nil, 0, fmt.Errorf("%w: %s is larger than 16 MiB", ErrOpenDKIM, path)
	}
	return data, st.Mode(), nil
}

// KeyTableRow is one parsed KeyTable row.
type KeyTableRow struct {
	Line     int
	Name     string
	Domain   string // "%" for the From domain
	Selector string
	KeyFile  string        // a path, as written
	Key      crypto.Signer // an inline base64 DER key, when KeyFile is ""
}

// SigningTableRow is one parsed SigningTable row.
type SigningTableRow struct {
	Line    int
	Pattern string // the lookup key (file:) or the wildcard pattern (refile:)
	KeyName string
	Signer  string // "" when absent
}

// tableLines calls fn with the key and value of each row of an OpenDKIM
// flat file: "#" starts a comment, blank lines are skipped, the key runs
// to the first whitespace and the value is the rest.
func tableLines(data []byte, fn func(line int, key, value string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		key, value := text, ""
		if j := strings.IndexAny(text, " \t"); j >= 0 {
			key, value = text[:j], strings.TrimSpace(text[j:])
		}
		if err := fn(n, key, value); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", n+1, err)
	}
	return nil
}

// ParseKeyTable parses a KeyTable file's content; name is the file's name
// for errors. Key files are not read.
func ParseKeyTable(data []byte, name string) ([]KeyTableRow, error) {
	var out []KeyTableRow
	seen := map[string]bool{}
	err := tableLines(data, func(line int, key, value string) error {
		where := fmt.Sprintf("%s:%d", name, line)
		if seen[key] {
			return fmt.Errorf("%w: %s: key name %q listed twice", ErrOpenDKIM, where, key)
		}
		seen[key] = true
		f := strings.Split(value, ":")
		if len(f) != 3 {
			return fmt.Errorf("%w: %s: want \"keyname domain:selector:keyfile\", got %d colon-separated values", ErrOpenDKIM, where, len(f))
		}
		r := KeyTableRow{Line: line, Name: key, Domain: strings.ToLower(strings.TrimSuffix(f[0], ".")), Selector: f[1]}
		if r.Domain != "%" {
			d, err := toASCII(r.Domain)
			if err != nil {
				return fmt.Errorf("%w: %s: domain: %w", ErrOpenDKIM, where, err)
			}
			if !validDomain(d) {
				return fmt.Errorf("%w: %s: invalid domain %q", ErrOpenDKIM, where, f[0])
			}
			// d= is written in A-labels (RFC 8616 §4), as Load does for
			// dkim.sign.keys: a U-label here would fail every signature.
			r.Domain = d
		}
		if !validDomain(r.Selector) {
			return fmt.Errorf("%w: %s: invalid selector %q", ErrOpenDKIM, where, r.Selector)
		}
		k := f[2]
		switch {
		case k == "":
			return fmt.Errorf("%w: %s: no key", ErrOpenDKIM, where)
		case strings.HasPrefix(k, "/") || strings.HasPrefix(k, "./") || strings.HasPrefix(k, "../"):
			if strings.Contains(k, "%") {
				return fmt.Errorf("%w: %s: key paths with %%, one file per From domain, are not supported: list each domain's key", ErrOpenDKIM, where)
			}
			r.KeyFile = k
		default:
			der, err := base64.StdEncoding.DecodeString(k)
			if err != nil {
				return fmt.Errorf("%w: %s: the key is neither a path (starting with /, ./ or ../) nor base64 DER", ErrOpenDKIM, where)
			}
			if r.Key, err = dkimkey.ParsePrivateDER(der); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrOpenDKIM, where, err)
			}
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrOpenDKIM) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrOpenDKIM, name, err)
	}
	return out, nil
}

// ParseSigningTable parses a SigningTable file's content, as a refile:
// (wildcard patterns) or a file: table; name is the file's name for errors.
func ParseSigningTable(data []byte, name string, refile bool) ([]SigningTableRow, error) {
	var out []SigningTableRow
	err := tableLines(data, func(line int, key, value string) error {
		where := fmt.Sprintf("%s:%d", name, line)
		if value == "" {
			return fmt.Errorf("%w: %s: %q has no key name", ErrOpenDKIM, where, key)
		}
		f := strings.Split(value, ":")
		if len(f) > 2 || f[0] == "" {
			return fmt.Errorf("%w: %s: want \"%s keyname[:signer]\"", ErrOpenDKIM, where, key)
		}
		r := SigningTableRow{Line: line, Pattern: key, KeyName: f[0]}
		if len(f) == 2 {
			// The signer becomes i=, an address (RFC 6376 §3.5); OpenDKIM
			// fails to sign (and by default rejects) with anything else.
			if !strings.Contains(f[1], "@") {
				return fmt.Errorf("%w: %s: signer %q is not an address (i= needs user@domain)", ErrOpenDKIM, where, f[1])
			}
			r.Signer = f[1]
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrOpenDKIM) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrOpenDKIM, name, err)
	}
	return out, nil
}

// Keys returns the keys the tables choose for mail from local@domain
// (domain lower-case).
func (o *OpenDKIM) Keys(local, domain string) []Key {
	if o == nil {
		return nil
	}
	addr := strings.ToLower(local + "@" + domain)
	var matches []odRow
	if o.refile {
		for _, r := range o.patterns {
			if wildMatch(r.pattern, addr) {
				matches = append(matches, r)
				if !o.Multiple {
					break
				}
			}
		}
	} else {
		user := strings.ToLower(local)
		lookups := []string{addr, domain}
		for p := strings.IndexByte(domain, '.'); p >= 0; {
			sub := domain[p:]
			lookups = append(lookups, user+"@"+sub, sub)
			q := strings.IndexByte(domain[p+1:], '.')
			if q < 0 {
				break
			}
			p += 1 + q
		}
		lookups = append(lookups, user+"@*", "*")
		for _, l := range lookups {
			if rs, ok := o.rows[l]; ok {
				matches = append(matches, rs...)
				if !o.Multiple {
					break
				}
			}
		}
	}
	var out []Key
	for _, r := range matches {
		name := r.keyName
		if name == "%" {
			name = domain
		}
		k, ok := o.keys[name]
		if !ok {
			continue
		}
		if k.Domain == "" {
			k.Domain = domain
		}
		if r.signer != "" {
			id := strings.ReplaceAll(r.signer, "%", domain)
			if _, d, ok := strings.Cut(id, "@"); ok && validDomain(d) &&
				(strings.EqualFold(d, k.Domain) || strings.HasSuffix(strings.ToLower(d), "."+strings.ToLower(k.Domain))) {
				k.Identity = id
			}
		}
		dup := false
		for _, x := range out {
			dup = dup || strings.EqualFold(x.Domain, k.Domain) && strings.EqualFold(x.Selector, k.Selector)
		}
		if !dup {
			out = append(out, k)
		}
	}
	return out
}

// aLabelPattern returns a SigningTable key or pattern in lower case with
// the labels of its domain part that are U-labels in their A-label form,
// since lookups use the A-label form of the From domain (RFC 8616). Labels
// holding a "*" or that are no valid U-label are kept as written.
func aLabelPattern(p string) string {
	p = strings.ToLower(p)
	at := strings.LastIndexByte(p, '@')
	labels := strings.Split(p[at+1:], ".")
	for i, l := range labels {
		if l == "" || strings.Contains(l, "*") || isASCII(l) {
			continue
		}
		if n, err := domain.Parse(l); err == nil {
			labels[i] = n.ASCII
		}
	}
	return p[:at+1] + strings.Join(labels, ".")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// wildMatch reports whether s matches pattern, where "*" matches any run
// of characters (also none) and every other character itself.
func wildMatch(pattern, s string) bool {
	// Iterative matching with backtracking to the last star: linear in
	// practice, O(len(pattern)·len(s)) at worst.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
