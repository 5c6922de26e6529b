package dkimsign

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/authmilter/authmilter/domain"
	"github.com/authmilter/authmilter/internal/dkimkey"
)

// ErrTable reports a key table that cannot be used: a bad domain or
// selector, a key file that cannot be read or is readable by others
// (wrapping dkimkey.ErrKeyPermissions), an RSA key below 1024 bits.
var ErrTable = errors.New("dkimsign: key table")

// Entry is one row of the key table: the domain it signs for, the selector
// and the PEM key file (PKCS#8 RSA or Ed25519, or PKCS#1 RSA; mode 0600 or
// stricter).
//
// Domain is "example.com" (mail whose From domain is example.com, signed
// d=example.com), "*.example.com" (mail from any subdomain of example.com,
// not example.com itself, signed d=example.com: one DNS record covers them
// and DMARC's relaxed alignment holds), or "*" (a catch-all: mail from any
// domain without keys of its own, signed with that From domain as d=, so
// every such domain must publish the key; Load warns about it).
type Entry struct {
	Domain   string `yaml:"domain"`
	Selector string `yaml:"selector"`
	KeyFile  string `yaml:"key_file"`
}

// Table chooses the keys that sign a message from its From address. It is
// immutable and safe for concurrent use; a reload builds a new one.
type Table struct {
	exact    map[string][]Key // From domain → keys
	wildcard map[string][]Key // parent domain of "*.parent" → keys
	any      []Key            // "*": Domain is filled in per message
	odkim    *OpenDKIM
}

// Load reads the key files of entries and builds a table. Warnings (a
// catch-all entry; RSA keys under 2048 bits, RFC 8301 §3.2) are returned
// for the caller to log; errors name the entry.
func Load(entries []Entry) (*Table, []string, error) {
	t := &Table{exact: map[string][]Key{}, wildcard: map[string][]Key{}}
	var warnings []string
	type ds struct{ pattern, selector string }
	seen := map[ds]bool{}
	for i, e := range entries {
		where := fmt.Sprintf("entry %d (domain %q, selector %q)", i+1, e.Domain, e.Selector)
		pattern := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(e.Domain), "."))
		parent, wild := strings.CutPrefix(pattern, "*.")
		if pattern != "*" {
			a, err := toASCII(parent)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s: %w", ErrTable, where, err)
			}
			if !validDomain(a) {
				return nil, nil, fmt.Errorf("%w: %s: invalid domain", ErrTable, where)
			}
			parent = a
		}
		if !validDomain(e.Selector) {
			return nil, nil, fmt.Errorf("%w: %s: invalid selector", ErrTable, where)
		}
		k := ds{pattern, strings.ToLower(e.Selector)}
		if seen[k] {
			return nil, nil, fmt.Errorf("%w: %s: listed twice", ErrTable, where)
		}
		seen[k] = true
		if e.KeyFile == "" {
			return nil, nil, fmt.Errorf("%w: %s: no key_file", ErrTable, where)
		}
		signer, err := dkimkey.LoadPrivateKey(e.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrTable, where, err)
		}
		if w, err := checkKeySize(signer, e.KeyFile); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrTable, where, err)
		} else if w != "" {
			warnings = append(warnings, w)
		}
		key := Key{Domain: parent, Selector: e.Selector, Signer: signer}
		switch {
		case pattern == "*":
			key.Domain = ""
			t.any = append(t.any, key)
			warnings = append(warnings, fmt.Sprintf("dkim.sign.keys %s: the catch-all domain \"*\" signs mail from every domain without keys of its own, with its From domain as d=", where))
		case wild:
			t.wildcard[parent] = append(t.wildcard[parent], key)
		default:
			t.exact[parent] = append(t.exact[parent], key)
		}
	}
	return t, warnings, nil
}

// checkKeySize refuses RSA keys under 1024 bits and warns about those under
// 2048 (RFC 8301 §3.2).
func checkKeySize(signer crypto.Signer, where string) (string, error) {
	pub, ok := signer.Public().(*rsa.PublicKey)
	if !ok {
		return "", nil
	}
	switch n := pub.N.BitLen(); {
	case n < MinRSABits:
		return "", fmt.Errorf("%s: RSA key of %d bits (RFC 8301 §3.2: at least %d)", where, n, MinRSABits)
	case n < RecommendedRSABits:
		return fmt.Sprintf("%s: RSA key of %d bits; RFC 8301 §3.2 recommends %d (some receivers refuse shorter keys)", where, n, RecommendedRSABits), nil
	}
	return "", nil
}

// Keys returns the keys that sign mail from the address from ("local@domain"
// or a From field value): the keys of its exact domain; failing those, of
// the nearest "*.parent" entry; failing those, the catch-all's. Keys of the
// OpenDKIM tables, when loaded, are added (a d=/s= pair once). A key never
// signs for a domain its entry does not cover.
func (t *Table) Keys(from string) []Key {
	if t == nil {
		return nil
	}
	local, domain, ok := SplitFrom(from)
	if !ok {
		return nil
	}
	out := t.own(domain)
	if t.odkim != nil {
		for _, k := range t.odkim.Keys(local, domain) {
			dup := false
			for _, o := range out {
				dup = dup || strings.EqualFold(o.Domain, k.Domain) && strings.EqualFold(o.Selector, k.Selector)
			}
			if !dup {
				out = append(out, k)
			}
		}
	}
	return out
}

// Empty reports whether the table has no keys at all.
func (t *Table) Empty() bool {
	return t == nil || len(t.exact) == 0 && len(t.wildcard) == 0 && len(t.any) == 0 && (t.odkim == nil || len(t.odkim.keys) == 0)
}

func (t *Table) own(domain string) []Key {
	if ks := t.exact[domain]; len(ks) > 0 {
		return ks
	}
	for d := domain; ; {
		_, parent, ok := strings.Cut(d, ".")
		if !ok {
			break
		}
		if ks := t.wildcard[parent]; len(ks) > 0 {
			return ks
		}
		d = parent
	}
	if len(t.any) == 0 || !validDomain(domain) {
		return nil
	}
	out := make([]Key, len(t.any))
	for i, k := range t.any {
		k.Domain = domain
		out[i] = k
	}
	return out
}

// WithOpenDKIM returns a copy of t that also signs as the OpenDKIM tables o
// decide.
func (t *Table) WithOpenDKIM(o *OpenDKIM) *Table {
	c := *t
	c.odkim = o
	return &c
}

// SplitFrom returns the local part and the lower-case domain of from: an
// address ("user@example.com") or a From field value (the first mailbox,
// RFC 5322 §3.6.2). A domain in U-labels (an SMTPUTF8 message) is
// returned in its A-label form.
func SplitFrom(from string) (local, domain string, ok bool) {
	addr := strings.TrimSpace(from)
	if list, err := mail.ParseAddressList(addr); err == nil && len(list) > 0 {
		addr = list[0].Address
	} else if strings.ContainsAny(addr, "<>\"(),:; \t\r\n") || strings.Count(addr, "@") != 1 {
		return "", "", false
	}
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return "", "", false
	}
	d, err := toASCII(strings.TrimSuffix(addr[i+1:], "."))
	if err != nil || !validDomain(d) {
		return "", "", false
	}
	return addr[:i], d, true
}

// toASCII returns the lower-case A-label form of a domain in U-labels or
// A-labels (RFC 8616: both are the same domain; d= is written in A-labels).
func toASCII(d string) (string, error) {
	n, err := domain.Parse(d)
	if err != nil {
		return "", err
	}
	return n.ASCII, nil
}

// NewTable returns a table of keys already loaded, by exact From domain
// (for tests and programs that hold their keys in memory).
func NewTable(byDomain map[string][]Key) *Table {
	t := &Table{exact: map[string][]Key{}, wildcard: map[string][]Key{}}
	for d, ks := range byDomain {
		t.exact[strings.ToLower(d)] = append([]Key(nil), ks...)
	}
	return t
}
