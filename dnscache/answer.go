package dnscache

import (
	"math"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// answer is the outcome of one question in the form the Resolver methods
// return, plus what a cache needs to know about it. Only the field that
// matches the question's type is filled. An answer is never modified once
// built: callers get copies of its slices.
type answer struct {
	txt   []string     // TXT: the strings of each record, joined
	addrs []netip.Addr // A or AAAA
	mx    []MX
	ptr   []string // PTR: names without the trailing dot

	authentic bool

	// ttl is how long the answer may be kept, in seconds: for a positive
	// answer the lowest TTL of the records and of the CNAMEs that led to
	// them (RFC 2181 §5.2); for a negative one the RFC 2308 §5 value from
	// the SOA record. ttlKnown is false when a negative answer had no SOA.
	ttl      uint32
	ttlKnown bool
}

// size returns the number of records in a.
func (a *answer) size() int {
	return len(a.txt) + len(a.addrs) + len(a.mx) + len(a.ptr)
}

// add appends the data of rr to a, if rr is of a type a Resolver returns.
func (a *answer) add(rr dns.RR) {
	switch rr := rr.(type) {
	case *dns.TXT:
		a.txt = append(a.txt, joinTXT(rr.Txt))
	case *dns.A:
		if ip, ok := netip.AddrFromSlice(rr.A.To4()); ok {
			a.addrs = append(a.addrs, ip)
		}
	case *dns.AAAA:
		if ip, ok := netip.AddrFromSlice(rr.AAAA.To16()); ok {
			a.addrs = append(a.addrs, ip)
		}
	case *dns.MX:
		a.mx = append(a.mx, MX{Host: hostName(rr.Mx), Pref: rr.Preference})
	case *dns.PTR:
		a.ptr = append(a.ptr, hostName(rr.Ptr))
	}
}

// lowerTTL lowers a.ttl to ttl.
func (a *answer) lowerTTL(ttl uint32) {
	if !a.ttlKnown || ttl < a.ttl {
		a.ttl = ttl
		a.ttlKnown = true
	}
}

// ttlOf returns the TTL of rr. RFC 2181 §8: a TTL with the most significant
// bit set is treated as zero.
func ttlOf(rr dns.RR) uint32 {
	ttl := rr.Header().Ttl
	if ttl > math.MaxInt32 {
		return 0
	}
	return ttl
}

// hostName returns a domain name from a record's data without the trailing
// dot. A null MX (RFC 7505, the root as exchange) becomes "".
func hostName(n string) string {
	return strings.TrimSuffix(n, ".")
}

// joinTXT returns the character-strings of one TXT record concatenated
// without separator (RFC 7208 §3.3, RFC 6376 §3.6.2.2). miekg/dns keeps
// the strings in presentation form, with `"`, `\` and non-printable octets
// escaped, so they are unescaped here.
func joinTXT(parts []string) string {
	if len(parts) == 1 && strings.IndexByte(parts[0], '\\') < 0 {
		return parts[0]
	}
	var b strings.Builder
	for _, p := range parts {
		unescapeTo(&b, p)
	}
	return b.String()
}

// unescapeTo writes s to b with its \X and \DDD escapes (RFC 1035 §5.1)
// replaced by the octets they stand for.
func unescapeTo(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			if v := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0'); v <= 255 {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
