package benchmail

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"strings"
)

// The receiving side: the MX that runs the milter, its authserv-id and its
// own ARC sealing keys (published so that downstream can check its seals).
const (
	AuthservID       = "mx.inbound.example"
	SealDomain       = "inbound.example"
	SealSelectorRSA  = "mx2048"
	SealSelectorEd   = "mxed"
	TrustedSealer    = "list.example"
	rcptDomain       = "inbound.example"
	inboundMXAddress = "192.0.2.1"
)

// sender is one sending domain and how it is set up in DNS.
type sender struct {
	domain   string
	ip       string // its outbound address, inside its SPF record
	dmarc    string // DMARC policy record, "" for none
	selector string // DKIM or ARC selector, "" when it does not sign
	key      crypto.Signer
}

// world is the set of domains and keys of a corpus.
type world struct {
	plain, rsa, ed, bank, bulk, shop, relaxed, origin, list, fwd *sender
	sealRSA                                                      *rsa.PrivateKey
	sealEd                                                       ed25519.PrivateKey
	unknown                                                      string // unknownDomain, or its renamed form
}

func newWorld(seed uint64) (*world, error) {
	dkimRSA, err := rsaKey(seed, "dkim", 2048)
	if err != nil {
		return nil, err
	}
	arcRSA, err := rsaKey(seed, "arc", 2048)
	if err != nil {
		return nil, err
	}
	sealRSA, err := rsaKey(seed, "seal", 2048)
	if err != nil {
		return nil, err
	}
	// RSA: dkimpy's arc_sign signs with rsa-sha256 only.
	fwdRSA, err := rsaKey(seed, "fwd", 2048)
	if err != nil {
		return nil, err
	}
	reject := "v=DMARC1; p=reject; rua=mailto:dmarc@%s"
	w := &world{
		plain:   &sender{domain: "plain.example", ip: "192.0.2.10", dmarc: reject},
		rsa:     &sender{domain: "rsa.example", ip: "192.0.2.20", dmarc: reject, selector: "s2048", key: dkimRSA},
		ed:      &sender{domain: "ed.example", ip: "192.0.2.30", dmarc: reject, selector: "ed1", key: ed25519Key(seed, "ed")},
		bank:    &sender{domain: "bank.example", ip: "192.0.2.40", dmarc: reject},
		bulk:    &sender{domain: "bulk.example", ip: "192.0.2.45", dmarc: "v=DMARC1; p=none", selector: "bulk", key: ed25519Key(seed, "bulk")},
		shop:    &sender{domain: "shop.example", ip: "192.0.2.50", dmarc: "v=DMARC1; p=quarantine; pct=100"},
		relaxed: &sender{domain: "relaxed.example", ip: "192.0.2.60", dmarc: "v=DMARC1; p=none; rua=mailto:dmarc@%s", selector: "s2048", key: dkimRSA},
		origin:  &sender{domain: "origin.example", ip: "192.0.2.70", dmarc: reject, selector: "s2048", key: dkimRSA},
		list:    &sender{domain: "list.example", ip: "198.51.100.20", dmarc: "v=DMARC1; p=none", selector: "arc2048", key: arcRSA},
		fwd:     &sender{domain: "fwd.example", ip: "198.51.100.30", dmarc: "v=DMARC1; p=none", selector: "arc2048", key: fwdRSA},
		sealRSA: sealRSA,
		sealEd:  ed25519Key(seed, "seal"),
		unknown: unknownDomain,
	}
	return w, nil
}

func (w *world) senders() []*sender {
	return []*sender{w.plain, w.rsa, w.ed, w.bank, w.bulk, w.shop, w.relaxed, w.origin, w.list, w.fwd}
}

// unknownDomain is the parent of the host names that publish nothing (the
// HELO names of forwarders and spoofers).
const unknownDomain = "unknown.example"

// renamed returns a copy of w whose sender domains carry the suffix -N
// (rsa.example becomes rsa-N.example) with the same keys, addresses and
// policies: a message of its own whose DNS answers no other message shares,
// for measuring with a cold cache. The receiver's keys stay w's.
func (w *world) renamed(n int) *world {
	c := *w
	for _, p := range []**sender{&c.plain, &c.rsa, &c.ed, &c.bank, &c.bulk, &c.shop, &c.relaxed, &c.origin, &c.list, &c.fwd} {
		s := **p
		s.domain = fmt.Sprintf("%s-%d.example", strings.TrimSuffix(s.domain, ".example"), n)
		*p = &s
	}
	c.unknown = fmt.Sprintf("%s-%d.example", strings.TrimSuffix(unknownDomain, ".example"), n)
	return &c
}

// zone writes the RFC 1035 master file of the world: one $ORIGIN section
// with its SOA for the "example." top-level domain (every sender, and those
// of the renamed copies in more, so the DMARC tree walk never leaves the
// file) and one per reverse zone (w's senders only).
func (w *world) zone(seed uint64, more []*world) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "; benchmail zone, seed %d: every record the corpus needs.\n", seed)
	b.WriteString("; Serve it with authmilter's dns.zone_file (or any authoritative server).\n")
	b.WriteString("$TTL 3600\n$ORIGIN example.\n")
	b.WriteString("@\tSOA\tns.example. hostmaster.example. 1 3600 600 86400 300\n")
	b.WriteString("ns\tA\t192.0.2.53\n")
	txt := func(owner, value string) {
		fmt.Fprintf(&b, "%s\tTXT\t%s\n", owner, quoteTXT(value))
	}
	var all []*sender
	for _, x := range append([]*world{w}, more...) {
		all = append(all, x.senders()...)
	}
	for _, s := range all {
		name := strings.TrimSuffix(s.domain, ".example")
		// RFC 7208: the MAIL FROM domain and the HELO name both publish.
		txt(name, fmt.Sprintf("v=spf1 ip4:%s/32 mx -all", s.ip))
		fmt.Fprintf(&b, "%s\tMX\t10 mail.%s\n", name, name)
		fmt.Fprintf(&b, "mail.%s\tA\t%s\n", name, s.ip)
		txt("mail."+name, "v=spf1 a -all")
		if s.dmarc != "" {
			rec := s.dmarc
			if strings.Contains(rec, "%s") {
				rec = fmt.Sprintf(rec, s.domain)
			}
			txt("_dmarc."+name, rec)
		}
		if s.key != nil {
			rec, err := keyRecord(s.key.Public())
			if err != nil {
				return "", err
			}
			txt(s.selector+"._domainkey."+name, rec)
		}
	}
	in := strings.TrimSuffix(SealDomain, ".example")
	txt(in, "v=spf1 ip4:"+inboundMXAddress+"/32 -all")
	fmt.Fprintf(&b, "mx.%s\tA\t%s\n", in, inboundMXAddress)
	txt("_dmarc."+in, "v=DMARC1; p=reject")
	for _, sk := range []struct {
		sel string
		key crypto.Signer
	}{{SealSelectorRSA, w.sealRSA}, {SealSelectorEd, w.sealEd}} {
		rec, err := keyRecord(sk.key.Public())
		if err != nil {
			return "", err
		}
		txt(sk.sel+"._domainkey."+in, rec)
	}

	// Reverse zones of the documentation networks (RFC 5737).
	for _, rz := range []struct {
		origin string
		prefix string
	}{{"2.0.192.in-addr.arpa.", "192.0.2."}, {"100.51.198.in-addr.arpa.", "198.51.100."}, {"113.0.203.in-addr.arpa.", "203.0.113."}} {
		fmt.Fprintf(&b, "\n$ORIGIN %s\n@\tSOA\tns.example. hostmaster.example. 1 3600 600 86400 300\n", rz.origin)
		for _, s := range w.senders() {
			if last, ok := strings.CutPrefix(s.ip, rz.prefix); ok {
				fmt.Fprintf(&b, "%s\tPTR\tmail.%s.\n", last, s.domain)
			}
		}
		if rz.prefix == "192.0.2." {
			fmt.Fprintf(&b, "1\tPTR\tmx.%s.\n", SealDomain)
		}
	}
	return b.String(), nil
}

// quoteTXT writes a TXT value as quoted strings of at most 255 octets
// (RFC 1035 §3.3.14), in parentheses when there are several.
func quoteTXT(v string) string {
	var parts []string
	for len(v) > 255 {
		parts = append(parts, `"`+v[:255]+`"`)
		v = v[255:]
	}
	parts = append(parts, `"`+v+`"`)
	if len(parts) == 1 {
		return parts[0]
	}
	return "( " + strings.Join(parts, "\n\t\t") + " )"
}
