package audit

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/internal/dkimkey"
)

// RFC 8301 §3.2: signers MUST use RSA keys of at least 1024 bits and
// SHOULD use at least 2048.
const recommendedRSABits = 2048

// dkim checks the key of each selector (dkim.key) and compares the
// configured keys with the published ones (dkim.key_match).
func (a *auditor) dkim(ctx context.Context) []Check {
	var selectors []string
	var mine []Key
	for _, k := range a.opts.Keys {
		if strings.EqualFold(strings.TrimSuffix(k.Domain, "."), a.domain) {
			mine = append(mine, k)
		}
	}
	for _, s := range a.opts.Selectors {
		if !slices.Contains(selectors, s) {
			selectors = append(selectors, s)
		}
	}
	for _, k := range mine {
		if !slices.Contains(selectors, k.Selector) {
			selectors = append(selectors, k.Selector)
		}
	}
	if len(selectors) == 0 {
		return []Check{finding("dkim.key", StatusInfo,
			"Name the selectors your signers use with --dkim-selector (or give --config with signing keys).",
			"no selector given: DKIM keys cannot be listed from the DNS")}
	}
	// One lookup per selector, all at once.
	checks := make([]Check, len(selectors))
	found := make([]*dkimkey.Key, len(selectors))
	var wg sync.WaitGroup
	for i, sel := range selectors {
		wg.Go(func() { checks[i], found[i] = a.dkimKey(ctx, sel) })
	}
	wg.Wait()
	keys := make(map[string]*dkimkey.Key)
	for i, sel := range selectors {
		keys[sel] = found[i]
	}
	for _, k := range mine {
		checks = append(checks, a.keyMatch(k, keys[k.Selector]))
	}
	return checks
}

// dkimKey checks the key record of one selector and returns the key when it
// parses.
func (a *auditor) dkimKey(ctx context.Context, sel string) (Check, *dkimkey.Key) {
	name := dkimkey.Name(sel, a.domain)
	txts, _, err := a.r.LookupTXT(ctx, name)
	switch {
	case err != nil && dnscache.IsNotFound(err):
		return finding("dkim.key", StatusFail,
			"Publish the selector's public key (authmilter keygen prints the record).",
			"no key record at %s: signatures with s=%s fail", name, sel), nil
	case err != nil:
		return unchecked("dkim.key", "the key at "+name, err), nil
	}
	var keyTXT []string
	for _, t := range txts {
		// RFC 6376 §3.6.1: v=, when present, comes first; records that are
		// no key record at all are told apart by p=.
		if strings.Contains(t, "p=") || strings.HasPrefix(strings.TrimSpace(t), "v=DKIM1") {
			keyTXT = append(keyTXT, t)
		}
	}
	if len(keyTXT) == 0 {
		return finding("dkim.key", StatusFail, "Publish the key record (v=DKIM1; k=…; p=…) there.",
			"%s has TXT %q but no key record", name, txts), nil
	}
	several := ""
	if len(keyTXT) > 1 {
		several = fmt.Sprintf(" (%d key records: receivers may use any one, RFC 6376 §3.6.2.2)", len(keyTXT))
	}
	k, err := dkimkey.Parse(keyTXT[0])
	switch {
	case errors.Is(err, dkimkey.ErrRevoked):
		return finding("dkim.key", StatusInfo,
			"Nothing, if the selector is retired; otherwise publish the public key in p=.",
			"%s: key revoked (empty p=, RFC 6376 §3.6.1)%s", name, several), nil
	case errors.Is(err, dkimkey.ErrKeyTooSmall):
		return finding("dkim.key", StatusFail,
			"Generate a 2048-bit RSA key (authmilter keygen) and publish it under a new selector.",
			"%s: %v: receivers treat signatures as failing (RFC 8301 §3.2)%s", name, err, several), nil
	case err != nil:
		return finding("dkim.key", StatusFail, "Correct the key record.",
			"%s: %q: %v%s", name, keyTXT[0], err, several), nil
	}
	desc := fmt.Sprintf("%s: k=%s, %d bits", name, k.Type, k.Bits)
	if k.Type == "ed25519" {
		desc = fmt.Sprintf("%s: k=ed25519", name)
	}
	if k.Testing() {
		desc += ", t=y (testing: receivers may treat failures as unsigned)"
	}
	desc += several
	switch {
	case k.Type == "rsa" && k.Bits < recommendedRSABits:
		return finding("dkim.key", StatusWarn,
			"Move to a 2048-bit RSA key under a new selector (RFC 8301 §3.2).",
			"%s: under the recommended %d bits", desc, recommendedRSABits), k
	case k.Testing() || several != "":
		fix := "Remove t=y once signing works."
		if several != "" {
			fix = "Keep one key record per selector."
		}
		return finding("dkim.key", StatusWarn, fix, "%s", desc), k
	}
	return pass("dkim.key", "%s", desc), k
}

// keyMatch is dkim.key_match: the published key is the configured one's
// public half (what opendkim-testkey checks).
func (a *auditor) keyMatch(k Key, published *dkimkey.Key) Check {
	name := dkimkey.Name(k.Selector, a.domain)
	if published == nil {
		return finding("dkim.key_match", StatusFail,
			"Publish the public key of "+k.Source+" at "+name+" (authmilter keygen prints the record).",
			"%s: no usable published key to compare with %s", name, k.Source)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := published.Public.(equaler); ok && e.Equal(k.Public) {
		return pass("dkim.key_match", "%s publishes the public key of %s", name, k.Source)
	}
	return finding("dkim.key_match", StatusFail,
		"Publish the public key of the configured private key (or configure the private key of the published one).",
		"%s publishes a key that is not the public key of %s: signatures will fail", name, k.Source)
}
