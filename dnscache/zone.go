package dnscache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// maxZoneSize bounds the zone file read into memory.
const maxZoneSize = 64 << 20

// Zone is a Resolver answering from a static RFC 1035 master file, as an
// override of the DNS for chosen names (test domains, local policy).
//
// The zone covers every name at or under its origins, which are: the origin
// given to LoadZone, every name set by an $ORIGIN directive, and the owner
// of every SOA record. A file with none of these, whose names are then all
// absolute, covers the names at or under its highest owner names (those
// with no ancestor among the file's owners). Inside the covered names the file is the whole truth
// (RFC 1034 §4.3.2 as an authoritative server): a name with no records
// is NXDOMAIN, unless a name below it has records (an empty non-terminal,
// RFC 8020), in which case, as for a name with records of other types only,
// the answer is NODATA. CNAMEs are followed within the file. Wildcards are
// not expanded ("*" is an ordinary label) and NS records do not delegate.
// Answers are marked Authentic: the file is trusted configuration.
//
// A Zone used alone answers NXDOMAIN for names it does not cover, including
// the targets of CNAMEs that leave it; Overlay sends both upstream.
type Zone struct {
	file    string
	origins []string             // canonical
	nodes   map[string]*zoneNode // every existing name, canonical
}

// zoneNode holds the data at one name.
type zoneNode struct {
	rrsets map[uint16]*answer // TXT, A, AAAA, MX, PTR
	cname  string             // canonical target, or ""
	rrs    []dns.RR           // every record, for the checks at load time
}

// LoadZoneFile reads the master file at path (see LoadZone); its origins come
// from the file itself ($ORIGIN directives and SOA records).
func LoadZoneFile(path string) (*Zone, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dnscache: zone: %w", err)
	}
	defer f.Close()
	return LoadZone(f, "", path)
}

// LoadZone parses an RFC 1035 master file from r. origin (may be empty) is
// the initial $ORIGIN and one of the zone's origins; filename is used in
// error messages, which name the file and line. $INCLUDE and $GENERATE are
// refused. Records of classes other than IN are ignored; records of types
// other than TXT, A, AAAA, MX, PTR and CNAME only make their name exist.
// Every owner name must be at or under one of the origins, and a name with
// a CNAME may have no other data (RFC 1034 §3.6.2).
func LoadZone(r io.Reader, origin, filename string) (*Zone, error) {
	text, err := io.ReadAll(io.LimitReader(r, maxZoneSize+1))
	if err != nil {
		return nil, fmt.Errorf("dnscache: zone %s: %w", filename, err)
	}
	if len(text) > maxZoneSize {
		return nil, fmt.Errorf("dnscache: zone %s: larger than %d bytes", filename, maxZoneSize)
	}
	directives, err := scanDirectives(text, origin, filename)
	if err != nil {
		return nil, err
	}

	zp := dns.NewZoneParser(bytes.NewReader(text), origin, filename)
	zp.SetDefaultTTL(3600) // TTLs are not used; spare the file a $TTL
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if rr.Header().Class == dns.ClassINET {
			rrs = append(rrs, rr)
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("dnscache: zone: %w", err)
	}

	z := &Zone{file: filename, nodes: make(map[string]*zoneNode)}
	if origin != "" {
		z.addOrigin(canonical(origin))
	}
	for _, o := range directives {
		z.addOrigin(canonical(o))
	}
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeSOA {
			z.addOrigin(canonical(rr.Header().Name))
		}
	}
	if len(z.origins) == 0 {
		// No $ORIGIN and no SOA: every owner name was written absolute
		// (the parser refuses a relative one without an origin). The file
		// then covers the names at or under its highest owners.
		z.origins = topOwners(rrs)
	}
	for _, rr := range rrs {
		if err := z.add(rr); err != nil {
			return nil, fmt.Errorf("dnscache: zone %s: %w", filename, err)
		}
	}
	for name, n := range z.nodes {
		if n.cname != "" && slices.ContainsFunc(n.rrs, func(rr dns.RR) bool {
			t := rr.Header().Rrtype
			return t != dns.TypeCNAME && t != dns.TypeRRSIG && t != dns.TypeNSEC
		}) {
			return nil, fmt.Errorf("dnscache: zone %s: %s: CNAME and other data (RFC 1034 §3.6.2)", filename, name+".")
		}
	}
	return z, nil
}

// topOwners returns the owner names of rrs (canonical) that have no
// ancestor among them.
func topOwners(rrs []dns.RR) []string {
	owners := make(map[string]bool, len(rrs))
	for _, rr := range rrs {
		owners[canonical(rr.Header().Name)] = true
	}
	var tops []string
	for o := range owners {
		top := true
		for p := o; p != ""; {
			p = parent(p)
			if owners[p] {
				top = false
				break
			}
		}
		if top {
			tops = append(tops, o)
		}
	}
	slices.Sort(tops)
	return tops
}

func (z *Zone) addOrigin(o string) {
	if !slices.Contains(z.origins, o) {
		z.origins = append(z.origins, o)
	}
}

// add stores rr, and makes every name between its owner and the origin
// exist (RFC 8020: a name with descendants exists).
func (z *Zone) add(rr dns.RR) error {
	h := rr.Header()
	owner := canonical(h.Name)
	if !z.covers(owner) {
		return fmt.Errorf("%s is outside the zone's origins (%s)", h.Name, strings.Join(z.Origins(), ", "))
	}
	n := z.node(owner)
	for _, old := range n.rrs {
		if dns.IsDuplicate(old, rr) {
			return nil // RFC 2181 §5: an RRset has no duplicate records
		}
	}
	n.rrs = append(n.rrs, rr)
	switch rr := rr.(type) {
	case *dns.CNAME:
		if n.cname != "" && n.cname != canonical(rr.Target) {
			return fmt.Errorf("%s: more than one CNAME", h.Name)
		}
		n.cname = canonical(rr.Target)
	case *dns.TXT, *dns.A, *dns.AAAA, *dns.MX, *dns.PTR:
		set := n.rrsets[h.Rrtype]
		if set == nil {
			set = &answer{authentic: true}
			n.rrsets[h.Rrtype] = set
		}
		set.add(rr)
	}
	for p := owner; p != "" && z.covers(parent(p)); {
		p = parent(p)
		z.node(p)
	}
	return nil
}

func (z *Zone) node(name string) *zoneNode {
	n := z.nodes[name]
	if n == nil {
		n = &zoneNode{rrsets: make(map[uint16]*answer)}
		z.nodes[name] = n
	}
	return n
}

// Origins returns the zone's origins, absolute (with the trailing dot).
func (z *Zone) Origins() []string {
	out := make([]string, len(z.origins))
	for i, o := range z.origins {
		out[i] = o + "."
	}
	return out
}

// Covers reports whether name is at or under one of the zone's origins, so
// that the zone alone answers for it.
func (z *Zone) Covers(name string) bool {
	return z.covers(canonical(name))
}

// covers is Covers for a canonical name.
func (z *Zone) covers(n string) bool {
	for _, o := range z.origins {
		if isAtOrUnder(n, o) {
			return true
		}
	}
	return false
}

// resolve answers (qtype, name) from the file, following CNAMEs (RFC 1034
// §4.3.2 step 3). When a CNAME leads out of the zone, it returns the target
// (canonical) instead of an answer.
func (z *Zone) resolve(qtype uint16, name string) (a *answer, outside string, err error) {
	server := "zone " + z.file
	owner := name
	for links := 0; links <= maxCNAMEChain; links++ {
		if !z.covers(owner) {
			return nil, owner, nil
		}
		n := z.nodes[owner]
		if n == nil {
			return nil, "", NewError(ErrNXDomain, name, server, "", false)
		}
		if set := n.rrsets[qtype]; set != nil && set.size() > 0 {
			return set, "", nil
		}
		if n.cname == "" {
			return nil, "", NewError(ErrNoData, name, server, "", false)
		}
		owner = n.cname
	}
	return nil, "", NewError(ErrTemporary, name, server, "CNAME chain too long", false)
}

// query implements querier.
func (z *Zone) query(_ context.Context, qtype uint16, name string) (*answer, error) {
	a, outside, err := z.resolve(qtype, name)
	if err == nil && outside != "" {
		return nil, NewError(ErrNXDomain, name, "zone "+z.file, "CNAME to "+outside+" outside the zone", false)
	}
	return a, err
}

// LookupTXT implements Resolver.
func (z *Zone) LookupTXT(ctx context.Context, name string) ([]string, AnswerInfo, error) {
	return lookupTXT(ctx, z, name)
}

// LookupA implements Resolver.
func (z *Zone) LookupA(ctx context.Context, name string) ([]netip.Addr, AnswerInfo, error) {
	return lookupA(ctx, z, name)
}

// LookupAAAA implements Resolver.
func (z *Zone) LookupAAAA(ctx context.Context, name string) ([]netip.Addr, AnswerInfo, error) {
	return lookupAAAA(ctx, z, name)
}

// LookupMX implements Resolver.
func (z *Zone) LookupMX(ctx context.Context, name string) ([]MX, AnswerInfo, error) {
	return lookupMX(ctx, z, name)
}

// LookupPTR implements Resolver.
func (z *Zone) LookupPTR(ctx context.Context, addr netip.Addr) ([]string, AnswerInfo, error) {
	return lookupPTR(ctx, z, addr)
}

var _ Resolver = (*Zone)(nil)
