package engine

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	msgauthdkim "github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/verify"
)

// This file is the DNS fault matrix: every kind of lookup a message causes
// (SPF TXT, a, mx, ptr and exists; the DKIM key; the DMARC record and the
// tree walk's query at the Organizational Domain; the ARC key) meets every
// way a DNS server can fail, through the real resolver stack (dnscache.New
// over UDP and TCP to a hostile in-process server). Each cell checks the
// RFC result of the method concerned, the action of the default policy, and
// that End returns within Engine.Timeout.

// Timeouts of the matrix: one exchange, and the wait at end of message.
// The bound check allows generous slack for -race on a loaded machine.
const (
	faultDNSTimeout = 2 * time.Second
	faultEngineWait = 5 * time.Second
	faultSlack      = 3 * time.Second
	// faultParallel cells run at once: enough to keep the matrix short
	// (most cells wait for timeouts), few enough that the answers which
	// should arrive are not starved of CPU on a small loaded machine.
	faultParallel = 8
)

// fault is one way the server mistreats the question under test.
type fault string

const (
	faultTimeout       fault = "timeout"               // never answers
	faultServFail      fault = "servfail"              // RCODE 2
	faultRefused       fault = "refused"               // RCODE 5
	faultTruncNoTCP    fault = "truncated-tcp-refused" // TC over UDP, nothing listens on TCP
	faultTruncTCPClose fault = "truncated-tcp-closed"  // TC over UDP, TCP closed without reply
	faultGarbage       fault = "garbage"               // right ID, then bytes that do not unpack
	faultWrongID       fault = "wrong-id"              // a reply with another ID (ignored: RFC 5452)
	faultOtherName     fault = "other-question"        // a reply for another name (ignored: RFC 5452 §4.2)
	faultNXDomain      fault = "nxdomain"              // RCODE 3
	faultNoData        fault = "nodata"                // NOERROR, no record of the type
	faultSeveral       fault = "several"               // two records where one is expected
	faultOversized     fault = "oversized"             // ~60 KB answer over TCP (within the default bound)
	faultManyRRs       fault = "many-rrs"              // a thousand or more records
	faultOverBound     fault = "over-max-answer"       // the oversized answer, MaxAnswerBytes 4096
)

// class groups faults by what the resolver makes of them.
type class int

const (
	classTemp      class = iota // a temporary failure (dnscache.ErrTemporary)
	classNX                     // NXDOMAIN
	classNoData                 // NODATA
	classSeveral                // several records
	classOversized              // a large answer, used
	classMany                   // many records, used
)

var faults = []struct {
	f fault
	c class
}{
	{faultTimeout, classTemp}, {faultServFail, classTemp}, {faultRefused, classTemp},
	{faultTruncNoTCP, classTemp}, {faultTruncTCPClose, classTemp}, {faultGarbage, classTemp},
	{faultWrongID, classTemp}, {faultOtherName, classTemp}, {faultOverBound, classTemp},
	{faultNXDomain, classNX}, {faultNoData, classNoData}, {faultSeveral, classSeveral},
	{faultOversized, classOversized}, {faultManyRRs, classMany},
}

// want is the expected outcome of a cell; an empty field is not checked.
type want struct {
	spf, dkim, dmarc, arc verify.Status
	action                Action
	reply                 string // prefix of the SMTP reply
	// alt is a second acceptable outcome where the RFC leaves the result
	// undefined, chosen by its DKIM result.
	alt *want
}

// zone maps a lower-case absolute name to its records by type.
type zone map[string]map[uint16][]dns.RR

func (z zone) add(rrs ...dns.RR) {
	for _, rr := range rrs {
		h := rr.Header()
		name := strings.ToLower(h.Name)
		if z[name] == nil {
			z[name] = map[uint16][]dns.RR{}
		}
		z[name][h.Rrtype] = append(z[name][h.Rrtype], rr)
	}
}

func (z zone) clone() zone {
	out := zone{}
	for n, m := range z {
		for _, rrs := range m {
			out.add(rrs...)
		}
		_ = n
	}
	return out
}

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: dns.Fqdn(name), Rrtype: t, Class: dns.ClassINET, Ttl: 300}
}

// txtRR is a TXT record holding s, split into 255-octet strings.
func txtRR(name, s string) dns.RR {
	rr := &dns.TXT{Hdr: hdr(name, dns.TypeTXT)}
	for len(s) > 255 {
		rr.Txt = append(rr.Txt, s[:255])
		s = s[255:]
	}
	rr.Txt = append(rr.Txt, s)
	return rr
}

func aRR(name, ip string) dns.RR {
	return &dns.A{Hdr: hdr(name, dns.TypeA), A: net.ParseIP(ip).To4()}
}

func mxRR(name string, pref uint16, host string) dns.RR {
	return &dns.MX{Hdr: hdr(name, dns.TypeMX), Preference: pref, Mx: dns.Fqdn(host)}
}

func ptrRR(name, host string) dns.RR {
	return &dns.PTR{Hdr: hdr(name, dns.TypePTR), Ptr: dns.Fqdn(host)}
}

// junkTXT returns n TXT records at name that are neither SPF, DKIM nor
// DMARC records.
func junkTXT(name string, n int) []dns.RR {
	out := make([]dns.RR, n)
	for i := range out {
		out[i] = txtRR(name, fmt.Sprintf("junk-%04d", i))
	}
	return out
}

// hostile is one cell's DNS server: it answers from z, except the question
// (target, qtype), which it answers with fault f.
type hostile struct {
	z      zone
	target string
	qtype  uint16
	f      fault
	bad    []dns.RR // the records of several, oversized and many-rrs
	packed []byte   // a reply carrying bad, packed once (ID to be set)
}

// pack packs the reply with the bad records once: packing thousands of
// records per query under -race would make the cells compete for CPU.
func (h *hostile) pack() error {
	if len(h.bad) == 0 {
		return nil
	}
	m := new(dns.Msg)
	m.SetQuestion(h.target, h.qtype)
	m.Response, m.RecursionAvailable, m.Compress = true, true, true
	m.Answer = h.bad
	b, err := m.Pack()
	h.packed = b
	return err
}

func (h *hostile) serve(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		return
	}
	q := r.Question[0]
	udp := w.RemoteAddr().Network() == "udp"
	m := new(dns.Msg)
	m.SetReply(r)
	m.Compress = true
	name := strings.ToLower(q.Name)
	if name == h.target && q.Qtype == h.qtype {
		switch h.f {
		case faultTimeout:
			return
		case faultServFail:
			m.Rcode = dns.RcodeServerFailure
		case faultRefused:
			m.Rcode = dns.RcodeRefused
		case faultTruncNoTCP, faultTruncTCPClose:
			if !udp {
				_ = w.Close()
				return
			}
			m.Truncated = true
		case faultGarbage:
			b := []byte{byte(r.Id >> 8), byte(r.Id), 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xff, 0xfe, 0x03, 'x'}
			_, _ = w.Write(b)
			return
		case faultWrongID:
			m.Answer = h.z[name][q.Qtype]
			m.Id ^= 0x5a5a
		case faultOtherName:
			m.Question[0].Name = "other.example."
			m.Answer = h.z[name][q.Qtype]
		case faultNXDomain:
			m.Rcode = dns.RcodeNameError
		case faultNoData:
		default: // several, oversized, many-rrs, over-max-answer
			if udp && len(h.packed) > 1232 {
				m.Truncated = true // a real server truncates over the client's EDNS0 buffer
				break
			}
			b := append([]byte(nil), h.packed...)
			b[0], b[1] = byte(r.Id>>8), byte(r.Id)
			_, _ = w.Write(b)
			return
		}
	} else if recs, ok := h.z[name]; ok {
		m.Answer = recs[q.Qtype] // NODATA when empty
	} else {
		m.Rcode = dns.RcodeNameError
	}
	// A real server truncates over the client's EDNS0 buffer (1232).
	if udp && m.Len() > 1232 {
		m.Answer, m.Truncated = nil, true
	}
	_ = w.WriteMsg(m)
}

// start runs the server on 127.0.0.1, UDP and (unless the fault refuses
// TCP) TCP on the same port, until the test ends.
func (h *hostile) start(t *testing.T) string {
	t.Helper()
	pc, ln := dnstest.ListenUDPTCP(t)
	if h.f == faultTruncNoTCP {
		ln.Close() // TCP refused on the server's port
		ln = nil
	}
	servers := []*dns.Server{{PacketConn: pc, Handler: dns.HandlerFunc(h.serve)}}
	if ln != nil {
		servers = append(servers, &dns.Server{Listener: ln, Handler: dns.HandlerFunc(h.serve)})
	}
	for _, srv := range servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// faultWorld holds the keys and messages every cell shares.
type faultWorld struct {
	base     zone
	signed   string // From example.com, DKIM d=example.com s=sel
	unsigned string // From example.com
	walk     string // From news.example.com, unsigned
	sealed   string // signed, then ARC-sealed by forwarder.test (i=1)
	bigBody  string // signed, with a 64 KB body
	dkimKey  string // the TXT record of sel._domainkey.example.com
	sealKey  string // the TXT record of seal._domainkey.forwarder.test
}

func newFaultWorld(t *testing.T) *faultWorld {
	t.Helper()
	_, dk, _ := ed25519.GenerateKey(rand.Reader)
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	pub := func(k ed25519.PrivateKey) string {
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
	}
	fw := &faultWorld{base: zone{}, dkimKey: pub(dk), sealKey: pub(sk)}
	fw.base.add(
		txtRR("example.com", "v=spf1 ip4:192.0.2.0/24 -all"),
		aRR("example.com", "192.0.2.1"),
		txtRR("news.example.com", "v=spf1 ip4:192.0.2.0/24 -all"),
		txtRR("_dmarc.example.com", "v=DMARC1; p=reject"),
		txtRR("sel._domainkey.example.com", fw.dkimKey),
		txtRR("seal._domainkey.forwarder.test", fw.sealKey),
		aRR("a.example.com", "192.0.2.10"),
		mxRR("mx.example.com", 10, "mx1.example.com"),
		aRR("mx1.example.com", "192.0.2.10"),
		ptrRR("10.2.0.192.in-addr.arpa", "mail.example.com"),
		aRR("mail.example.com", "192.0.2.10"),
		aRR("x.example.com", "127.0.0.2"),
	)

	fw.unsigned = msgText("example.com", "", "Hello.\r\n")
	fw.walk = msgText("news.example.com", "", "Hello.\r\n")
	sign := func(msg string) string {
		var out bytes.Buffer
		err := msgauthdkim.Sign(&out, strings.NewReader(msg), &msgauthdkim.SignOptions{
			Domain: "example.com", Selector: "sel", Signer: dk,
			HeaderCanonicalization: msgauthdkim.CanonicalizationRelaxed,
			BodyCanonicalization:   msgauthdkim.CanonicalizationRelaxed,
		})
		if err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	fw.signed = sign(fw.unsigned)
	fw.bigBody = sign(msgText("example.com", "", strings.Repeat(strings.Repeat("x", 62)+"\r\n", 1024)))

	// The forwarder's hop: validate (no chain yet) and seal.
	br := bufio.NewReader(strings.NewReader(fw.signed))
	fields, err := message.ReadHeader(br, message.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	val := arc.NewValidator(context.Background(), &dnstest.Resolver{}, fields, nil)
	var body bytes.Buffer
	_ = message.BodyCRLF(br, 1024, func(c []byte) error { body.Write(c); _, err := val.Write(c); return err })
	chain := val.Close()
	sealer := &arc.Sealer{Domain: "forwarder.test", Selector: "seal", Key: sk}
	set, err := sealer.Seal(fields, val.BodyHash(), chain, "forwarder.test",
		"spf=pass smtp.mailfrom=alice@example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com")
	if err != nil {
		t.Fatal(err)
	}
	var relayed bytes.Buffer
	for _, f := range append(set, fields...) {
		relayed.Write(f.Raw)
	}
	relayed.WriteString("\r\n" + body.String())
	fw.sealed = relayed.String()
	return fw
}

// lookupKind is one row of the matrix: the question under fault, the
// records it gets for several/oversized/many, the message and client, and
// the expected outcome per fault class.
type lookupKind struct {
	name   string
	target string // absolute, lower case
	qtype  uint16
	spf    string // the SPF record of example.com, when the row needs one
	// several, oversized and many build the answers of those faults.
	several, oversized, many func() []dns.RR
	msg                      func(*faultWorld) string
	client                   string
	mailFrom                 string
	expect                   func(class) want
}

// manyA returns n A records at name, the client's address last.
func manyA(name string, n int) []dns.RR {
	out := make([]dns.RR, 0, n)
	for i := range n - 1 {
		out = append(out, aRR(name, fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)))
	}
	return append(out, aRR(name, "192.0.2.10"))
}

func manyMX(name string, n int) []dns.RR {
	out := make([]dns.RR, n)
	for i := range out {
		out[i] = mxRR(name, uint16(i), fmt.Sprintf("m%d.example.com", i))
	}
	return out
}

// manyPTR returns n PTR records, the client's validated name at index at.
func manyPTR(name string, n, at int) []dns.RR {
	out := make([]dns.RR, n)
	for i := range out {
		out[i] = ptrRR(name, fmt.Sprintf("h%d.other.test", i))
	}
	out[at] = ptrRR(name, "mail.example.com")
	return out
}

// padKey returns key with a 60 KB n= (notes) tag after v= (which RFC 6376
// §3.6.1 wants first).
func padKey(key string) string {
	return strings.Replace(key, "v=DKIM1; ", "v=DKIM1; n="+pad+"; ", 1)
}

// pad is about 60 KB of filler for a tag or modifier value.
var pad = strings.Repeat("A", 60000)

func faultKinds(fw *faultWorld) []lookupKind {
	signed := func(fw *faultWorld) string { return fw.signed }
	// SPF rows: the message is DKIM-signed and aligned, so DMARC passes
	// whatever SPF says: an SPF temperror alone never rejects or defers.
	spfRow := func(c class, r verify.Status) want {
		return want{spf: r, dkim: verify.StatusPass, dmarc: verify.StatusPass, action: ActionAccept}
	}
	spfExpect := func(temp, void, several, oversized, many verify.Status) func(class) want {
		return func(c class) want {
			return spfRow(c, map[class]verify.Status{
				classTemp: temp, classNX: void, classNoData: void,
				classSeveral: several, classOversized: oversized, classMany: many,
			}[c])
		}
	}
	// DMARC rows: the message is not signed and the client is outside
	// the SPF record, so the DMARC verdict decides: fail under p=reject
	// when a record is found, none without one, temperror when discovery
	// fails.
	dmarcExpect := func(c class) want {
		switch c {
		case classTemp:
			return want{spf: verify.StatusFail, dmarc: verify.StatusTemperror, action: ActionTempfail, reply: "451 4.7.1 "}
		case classNX, classNoData, classSeveral:
			// RFC 9989 §4.10 step 2: several records are all discarded,
			// so there is no policy at that name.
			return want{spf: verify.StatusFail, dmarc: verify.StatusNone, action: ActionAccept}
		}
		return want{spf: verify.StatusFail, dmarc: verify.StatusFail, action: ActionReject, reply: "550 5.7.1 "}
	}
	return []lookupKind{
		{
			name: "spf-txt", target: "example.com.", qtype: dns.TypeTXT,
			several: func() []dns.RR {
				return []dns.RR{txtRR("example.com", "v=spf1 ip4:192.0.2.0/24 -all"), txtRR("example.com", "v=spf1 -all")}
			},
			oversized: func() []dns.RR {
				return []dns.RR{txtRR("example.com", "v=spf1 ip4:192.0.2.0/24 x-pad="+pad+" -all")}
			},
			many: func() []dns.RR {
				return append(junkTXT("example.com", 2000), txtRR("example.com", "v=spf1 ip4:192.0.2.0/24 -all"))
			},
			msg: signed, client: "192.0.2.10", mailFrom: "alice@example.com",
			// RFC 7208 §4.4: temperror; §4.3/§4.4: none without a record;
			// §4.5: permerror for two records.
			expect: spfExpect(verify.StatusTemperror, verify.StatusNone, verify.StatusPermerror, verify.StatusPass, verify.StatusPass),
		},
		{
			name: "spf-a", target: "a.example.com.", qtype: dns.TypeA, spf: "v=spf1 a:a.example.com -all",
			several: func() []dns.RR {
				return []dns.RR{aRR("a.example.com", "192.0.2.1"), aRR("a.example.com", "192.0.2.10")}
			},
			oversized: func() []dns.RR { return manyA("a.example.com", 3800) },
			many:      func() []dns.RR { return manyA("a.example.com", 1000) },
			msg:       signed, client: "192.0.2.10", mailFrom: "alice@example.com",
			// §5: a DNS error gives temperror; NXDOMAIN/NODATA no match (a
			// void lookup), so -all: fail.
			expect: spfExpect(verify.StatusTemperror, verify.StatusFail, verify.StatusPass, verify.StatusPass, verify.StatusPass),
		},
		{
			name: "spf-mx", target: "mx.example.com.", qtype: dns.TypeMX, spf: "v=spf1 mx:mx.example.com -all",
			several: func() []dns.RR {
				return []dns.RR{mxRR("mx.example.com", 5, "mx0.example.com"), mxRR("mx.example.com", 10, "mx1.example.com")}
			},
			oversized: func() []dns.RR { return manyMX("mx.example.com", 2500) },
			many:      func() []dns.RR { return manyMX("mx.example.com", 1000) },
			msg:       signed, client: "192.0.2.10", mailFrom: "alice@example.com",
			// §4.6.4: more than 10 MX records is a permerror.
			expect: spfExpect(verify.StatusTemperror, verify.StatusFail, verify.StatusPass, verify.StatusPermerror, verify.StatusPermerror),
		},
		{
			name: "spf-ptr", target: "10.2.0.192.in-addr.arpa.", qtype: dns.TypePTR, spf: "v=spf1 ptr:example.com -all",
			several: func() []dns.RR {
				return []dns.RR{ptrRR("10.2.0.192.in-addr.arpa", "other.test"), ptrRR("10.2.0.192.in-addr.arpa", "mail.example.com")}
			},
			oversized: func() []dns.RR { return manyPTR("10.2.0.192.in-addr.arpa", 2000, 0) },
			// §4.6.4: only the first 10 names are looked at; the
			// client's name is the 11th.
			many: func() []dns.RR { return manyPTR("10.2.0.192.in-addr.arpa", 1000, 10) },
			msg:  signed, client: "192.0.2.10", mailFrom: "alice@example.com",
			// §5.5: a DNS error in the PTR lookup makes ptr not match (no
			// temperror), so -all: fail.
			expect: spfExpect(verify.StatusFail, verify.StatusFail, verify.StatusPass, verify.StatusPass, verify.StatusFail),
		},
		{
			name: "spf-exists", target: "x.example.com.", qtype: dns.TypeA, spf: "v=spf1 exists:x.example.com -all",
			several:   func() []dns.RR { return []dns.RR{aRR("x.example.com", "127.0.0.2"), aRR("x.example.com", "127.0.0.3")} },
			oversized: func() []dns.RR { return manyA("x.example.com", 3800) },
			many:      func() []dns.RR { return manyA("x.example.com", 1000) },
			msg:       signed, client: "192.0.2.10", mailFrom: "alice@example.com",
			// §5.7: any record matches; a DNS error is temperror.
			expect: spfExpect(verify.StatusTemperror, verify.StatusFail, verify.StatusPass, verify.StatusPass, verify.StatusPass),
		},
		{
			name: "dkim-key", target: "sel._domainkey.example.com.", qtype: dns.TypeTXT,
			several: func() []dns.RR {
				return []dns.RR{txtRR("sel._domainkey.example.com", fw.dkimKey), txtRR("sel._domainkey.example.com", fw.dkimKey)}
			},
			oversized: func() []dns.RR {
				return []dns.RR{txtRR("sel._domainkey.example.com", padKey(fw.dkimKey))}
			},
			many: func() []dns.RR {
				return append(junkTXT("sel._domainkey.example.com", 2000), txtRR("sel._domainkey.example.com", fw.dkimKey))
			},
			// SPF fails (client outside the record): DKIM alone decides.
			msg: signed, client: "198.51.100.7", mailFrom: "alice@example.com",
			expect: func(c class) want {
				switch c {
				case classTemp:
					// RFC 6376 §6.1.2 TEMPFAIL; RFC 9989 §5.3.6: an
					// identifier that would align failed temporarily.
					return want{spf: verify.StatusFail, dkim: verify.StatusTemperror, dmarc: verify.StatusTemperror, action: ActionTempfail, reply: "451 4.7.1 "}
				case classOversized:
					return want{spf: verify.StatusFail, dkim: verify.StatusPass, dmarc: verify.StatusPass, action: ActionAccept}
				}
				// §6.1.2 PERMFAIL: no key.
				perm := want{spf: verify.StatusFail, dkim: verify.StatusPermerror, dmarc: verify.StatusFail, action: ActionReject, reply: "550 5.7.1 "}
				if c == classSeveral || c == classMany {
					// §3.6.2.2: several key records give undefined
					// results: refusing the set (go-msgauth) or using the
					// first that parses (internal/dkimkey, as ARC does).
					perm.alt = &want{spf: verify.StatusFail, dkim: verify.StatusPass, dmarc: verify.StatusPass, action: ActionAccept}
				}
				return perm
			},
		},
		{
			name: "dmarc-record", target: "_dmarc.example.com.", qtype: dns.TypeTXT,
			several: func() []dns.RR {
				return []dns.RR{txtRR("_dmarc.example.com", "v=DMARC1; p=reject"), txtRR("_dmarc.example.com", "v=DMARC1; p=none")}
			},
			oversized: func() []dns.RR { return []dns.RR{txtRR("_dmarc.example.com", "v=DMARC1; p=reject; x-pad="+pad)} },
			many: func() []dns.RR {
				return append(junkTXT("_dmarc.example.com", 2000), txtRR("_dmarc.example.com", "v=DMARC1; p=reject"))
			},
			msg: func(fw *faultWorld) string { return fw.unsigned }, client: "198.51.100.7", mailFrom: "alice@example.com",
			expect: dmarcExpect,
		},
		{
			// The Author Domain news.example.com has no record: the walk's
			// next query, at the Organizational Domain, meets the fault.
			name: "dmarc-treewalk", target: "_dmarc.example.com.", qtype: dns.TypeTXT,
			several: func() []dns.RR {
				return []dns.RR{txtRR("_dmarc.example.com", "v=DMARC1; p=reject"), txtRR("_dmarc.example.com", "v=DMARC1; p=reject")}
			},
			oversized: func() []dns.RR { return []dns.RR{txtRR("_dmarc.example.com", "v=DMARC1; p=reject; x-pad="+pad)} },
			many: func() []dns.RR {
				return append(junkTXT("_dmarc.example.com", 2000), txtRR("_dmarc.example.com", "v=DMARC1; p=reject"))
			},
			msg: func(fw *faultWorld) string { return fw.walk }, client: "198.51.100.7", mailFrom: "alice@news.example.com",
			expect: dmarcExpect,
		},
		{
			name: "arc-key", target: "seal._domainkey.forwarder.test.", qtype: dns.TypeTXT,
			several: func() []dns.RR {
				return []dns.RR{txtRR("seal._domainkey.forwarder.test", fw.sealKey), txtRR("seal._domainkey.forwarder.test", fw.sealKey)}
			},
			oversized: func() []dns.RR {
				return []dns.RR{txtRR("seal._domainkey.forwarder.test", padKey(fw.sealKey))}
			},
			many: func() []dns.RR {
				return append(junkTXT("seal._domainkey.forwarder.test", 2000), txtRR("seal._domainkey.forwarder.test", fw.sealKey))
			},
			msg: func(fw *faultWorld) string { return fw.sealed }, client: "192.0.2.10", mailFrom: "alice@example.com",
			expect: func(c class) want {
				w := want{spf: verify.StatusPass, dkim: verify.StatusPass, dmarc: verify.StatusPass, action: ActionAccept}
				switch c {
				case classTemp:
					// A key that could not be fetched is temperror, not a
					// broken chain (RFC 8617 §5.2 concerns signatures).
					w.arc = verify.StatusTemperror
				case classNX, classNoData:
					w.arc = verify.StatusFail
				default:
					// Several records: the first that parses is used
					// (internal/dkimkey); unlike DKIM's go-msgauth, which
					// refuses the set.
					w.arc = verify.StatusPass
				}
				return w
			},
		},
	}
}

// cellResult is what one cell observed.
type cellResult struct {
	v     *Verdict
	end   time.Duration // the time End took
	total time.Duration // Begin to the return of End
	err   error
}

func TestDNSFaultMatrix(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t)
	type cell struct {
		kind lookupKind
		f    fault
		c    class
		e    *Engine
		res  cellResult
	}
	var cells []*cell
	for _, k := range faultKinds(fw) {
		for _, f := range faults {
			z := fw.base.clone()
			if k.spf != "" {
				delete(z["example.com."], dns.TypeTXT)
				z.add(txtRR("example.com", k.spf))
			}
			h := &hostile{z: z, target: k.target, qtype: k.qtype, f: f.f}
			switch f.f {
			case faultSeveral:
				h.bad = k.several()
			case faultOversized, faultOverBound:
				h.bad = k.oversized()
			case faultManyRRs:
				h.bad = k.many()
			}
			if err := h.pack(); err != nil {
				t.Fatalf("%s/%s: %v", k.name, f.f, err)
			}
			cfg := dnscache.Config{Servers: []string{h.start(t)}, Timeout: faultDNSTimeout, Attempts: 1}
			if f.f == faultOverBound {
				cfg.MaxAnswerBytes = 4096
			}
			r, err := dnscache.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			e := &Engine{Resolver: r, AuthservID: "mx.test", Policy: DefaultPolicy(), Timeout: faultEngineWait}
			cells = append(cells, &cell{kind: k, f: f.f, c: f.c, e: e})
		}
	}

	// Every cell at once: each has its own server and resolver, and most
	// of the time is spent waiting for timeouts.
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, faultParallel)
	for _, c := range cells {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c.res = runTimed(c.e, Envelope{
				ClientIP: netip.MustParseAddr(c.kind.client), HELO: "helo.test",
				MailFrom: c.kind.mailFrom, Rcpts: []string{"bob@mx.test"},
			}, c.kind.msg(fw))
		})
	}
	wg.Wait()
	t.Logf("%d cells in %v", len(cells), time.Since(start))

	for _, c := range cells {
		t.Run(c.kind.name+"/"+string(c.f), func(t *testing.T) {
			if c.res.err != nil {
				t.Fatal(c.res.err)
			}
			v, w := c.res.v, c.kind.expect(c.c)
			if w.alt != nil && len(v.DKIM) == 1 && v.DKIM[0].Status == w.alt.dkim {
				w = *w.alt
			}
			t.Logf("spf=%s dkim=%v dmarc=%s (%s) arc=%s action=%s %q end=%v",
				v.SPF.Status, dkimResults(v), v.DMARC.Status, v.DMARC.Reason, v.ARC.Status, v.Action, v.Reply, c.res.end)
			if max := c.e.Timeout + faultSlack; c.res.end > max {
				t.Errorf("End took %v, over Engine.Timeout %v + %v", c.res.end, c.e.Timeout, faultSlack)
			}
			if w.spf != "" && v.SPF.Status != w.spf {
				t.Errorf("spf = %s (%v), want %s", v.SPF.Status, v.SPF.Err, w.spf)
			}
			if w.dkim != "" {
				if len(v.DKIM) != 1 || v.DKIM[0].Status != w.dkim {
					t.Errorf("dkim = %v, want %s", dkimResults(v), w.dkim)
				}
			} else if len(v.DKIM) != 0 {
				t.Errorf("dkim = %v, want none", dkimResults(v))
			}
			if w.dmarc != "" && v.DMARC.Status != w.dmarc {
				t.Errorf("dmarc = %s (%s), want %s", v.DMARC.Status, v.DMARC.Reason, w.dmarc)
			}
			if w.arc != "" && v.ARC.Status != w.arc {
				t.Errorf("arc = %s (%s), want %s", v.ARC.Status, v.ARC.Reason, w.arc)
			}
			if v.Action != w.action || !strings.HasPrefix(v.Reply, w.reply) {
				t.Errorf("action = %s %q, want %s %q…", v.Action, v.Reply, w.action, w.reply)
			}
			if c.kind.name == "dmarc-treewalk" && v.DMARC.Status == verify.StatusFail && v.DMARC.PolicyDomain != "example.com" {
				t.Errorf("policy domain %q, want example.com (the Organizational Domain)", v.DMARC.PolicyDomain)
			}
			if c.f == faultSeveral && strings.HasPrefix(c.kind.name, "dmarc") && !strings.Contains(v.DMARC.Reason, "discarded") {
				t.Errorf("dmarc reason %q does not say the records were discarded", v.DMARC.Reason)
			}
		})
	}
}

func dkimResults(v *Verdict) []string {
	var out []string
	for _, s := range v.DKIM {
		out = append(out, string(s.Status)+" ("+s.Reason+")")
	}
	return out
}

// runTimed feeds msg through an Evaluation as the milter session does and
// times End. It runs off the test goroutine, so it returns errors.
func runTimed(e *Engine, env Envelope, msg string) cellResult {
	br := bufio.NewReader(strings.NewReader(msg))
	fields, err := message.ReadHeader(br, message.Limits{})
	if err != nil {
		return cellResult{err: err}
	}
	begin := time.Now()
	m := e.Begin(context.Background(), env)
	for _, f := range fields {
		m.Header(f)
	}
	m.EndOfHeaders()
	if err := message.BodyCRLF(br, 4096, func(c []byte) error { m.Body(c); return nil }); err != nil {
		return cellResult{err: err}
	}
	start := time.Now()
	v := m.End()
	return cellResult{v: v, end: time.Since(start), total: time.Since(begin)}
}

// A resolver that never answers, with exchanges much longer than the
// message's budget, cannot hold End past Engine.Timeout: every result still
// outstanding is a temperror and the default policy defers the message.
//
// Before End, the body feed of a signed message may wait for a key lookup a
// verifier needs before it hashes (go-msgauth's order); the resolver's own
// budget (Timeout × Attempts × servers), not Engine.Timeout (which starts
// at End), bounds that wait. The whole message is therefore bounded by the
// resolver budget plus Engine.Timeout.
func TestEngineTimeoutBoundsSilentResolver(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	const (
		resolverBudget = 2 * time.Second // Timeout × Attempts × 1 server
		budget         = 300 * time.Millisecond
	)
	r, err := dnscache.New(dnscache.Config{Servers: []string{pc.LocalAddr().String()}, Timeout: resolverBudget, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	fw := newFaultWorld(t)
	e := &Engine{Resolver: r, AuthservID: "mx.test", Policy: DefaultPolicy(), Timeout: budget}
	for _, tt := range []struct {
		name, msg string
		signed    bool
		total     time.Duration
	}{
		{"unsigned", fw.unsigned, false, budget + faultSlack},
		{"signed and sealed", fw.sealed, true, resolverBudget + budget + faultSlack},
		{"signed, 64 KB body", fw.bigBody, true, resolverBudget + budget + faultSlack},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runTimed(e, Envelope{ClientIP: netip.MustParseAddr("192.0.2.10"), HELO: "helo.test", MailFrom: "alice@example.com"}, tt.msg)
			if res.err != nil {
				t.Fatal(res.err)
			}
			v := res.v
			t.Logf("End %v, whole message %v", res.end, res.total)
			if res.end > budget+faultSlack {
				t.Errorf("End took %v with Engine.Timeout %v", res.end, budget)
			}
			if res.total > tt.total {
				t.Errorf("the message took %v, over %v", res.total, tt.total)
			}
			if v.SPF.Status != verify.StatusTemperror || v.DMARC.Status != verify.StatusTemperror {
				t.Errorf("spf=%s dmarc=%s, want temperror", v.SPF.Status, v.DMARC.Status)
			}
			if tt.signed && (len(v.DKIM) != 1 || v.DKIM[0].Status != verify.StatusTemperror) {
				t.Errorf("dkim=%v, want temperror", dkimResults(v))
			}
			if tt.msg == fw.sealed && v.ARC.Status != verify.StatusTemperror {
				t.Errorf("arc=%s, want temperror", v.ARC.Status)
			}
			if v.Action != ActionTempfail || !strings.HasPrefix(v.Reply, "451 4.7.1 ") {
				t.Errorf("action %s %q, want tempfail 451 4.7.1", v.Action, v.Reply)
			}
		})
	}
}
