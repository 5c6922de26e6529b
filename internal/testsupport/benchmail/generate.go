package benchmail

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/verify/authres"
)

// Envelope is the SMTP side of a message, as the NAME.env sidecar holds it.
type Envelope struct {
	ClientIP string   `json:"client_ip"`
	HELO     string   `json:"helo"`
	MailFrom string   `json:"mail_from"`
	Rcpts    []string `json:"rcpts"`
	// Class is informative: load tools report per class when present.
	Class string `json:"class,omitempty"`
}

// Message is one generated message.
type Message struct {
	Name     string // CLASS.SIZE.NNN
	Class    Class
	Size     string
	Envelope Envelope
	Data     []byte // the message as received, CRLF line ends
	Expect   Expect
}

// Options select what Generate produces. Zero fields take the defaults.
type Options struct {
	Seed     uint64
	PerClass int     // messages per class and size (default 4)
	Classes  []Class // default Classes
	Sizes    []Size  // default Sizes
	// Start is the Date of the first message (default 2026-11-02 09:00 UTC);
	// messages follow a minute apart.
	Start time.Time
	// Sealer seals the ARC Sets (default SealDkimpy).
	Sealer ARCSealer
	// Python is the interpreter that runs dkimpy (default /usr/bin/python3,
	// else python3 on PATH).
	Python string
	// DistinctSenders gives every message sender domains of its own
	// (rsa-N.example for message N, and so on, all in the zone), so that
	// no message finds another's DNS answers in a cache: replayed once to
	// a freshly started milter, every message is judged cold.
	DistinctSenders bool
}

// Corpus is a generated corpus: messages, the zone that answers for them,
// and the receiving side's ARC sealing keys.
type Corpus struct {
	Seed     uint64
	Zone     string // RFC 1035 master file
	Messages []Message
	// The receiver's ARC sealing keys, published in Zone at
	// SealSelectorRSA._domainkey.SealDomain and SealSelectorEd.
	SealRSA     *rsa.PrivateKey
	SealEd25519 ed25519.PrivateKey
	// Sealer is what sealed the ARC Sets of the messages.
	Sealer ARCSealer
	// TrustedSealers are the domains of the mailing lists that seal the
	// ARC classes (TrustedSealer, and every message's own with
	// DistinctSenders): the receiver trusts them.
	TrustedSealers []string

	w      *world
	zone   *dnscache.Zone
	dkimpy *dkimpy // while Generate seals with dkimpy
}

// Resolver returns the zone as a dnscache.Resolver (in memory: a warm
// cache).
func (c *Corpus) Resolver() dnscache.Resolver { return c.zone }

// Find returns the first message of a class and size, or nil.
func (c *Corpus) Find(class Class, size string) *Message {
	for i := range c.Messages {
		if m := &c.Messages[i]; m.Class == class && m.Size == size {
			return m
		}
	}
	return nil
}

// Generate builds a corpus.
func Generate(opts Options) (*Corpus, error) {
	if opts.PerClass <= 0 {
		opts.PerClass = 4
	}
	if opts.Classes == nil {
		opts.Classes = Classes
	}
	if opts.Sizes == nil {
		opts.Sizes = Sizes
	}
	if opts.Start.IsZero() {
		opts.Start = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	}
	switch opts.Sealer {
	case "":
		opts.Sealer = SealDkimpy
	case SealDkimpy, SealOwn:
	default:
		return nil, fmt.Errorf("benchmail: unknown ARC sealer %q (want %s or %s)", opts.Sealer, SealDkimpy, SealOwn)
	}
	w, err := newWorld(opts.Seed)
	if err != nil {
		return nil, err
	}
	var worlds []*world // one per message, with DistinctSenders
	if opts.DistinctSenders {
		for n := range len(opts.Sizes) * len(opts.Classes) * opts.PerClass {
			x := w.renamed(n)
			worlds = append(worlds, x)
		}
	}
	zt, err := w.zone(opts.Seed, worlds)
	if err != nil {
		return nil, err
	}
	z, err := dnscache.LoadZone(strings.NewReader(zt), "", "benchmail.zone")
	if err != nil {
		return nil, fmt.Errorf("benchmail: generated zone: %w", err)
	}
	c := &Corpus{Seed: opts.Seed, Zone: zt, SealRSA: w.sealRSA, SealEd25519: w.sealEd, Sealer: opts.Sealer, TrustedSealers: []string{TrustedSealer}, w: w, zone: z}
	if opts.Sealer == SealDkimpy && (slices.Contains(opts.Classes, ARC1Hop) || slices.Contains(opts.Classes, ARC2Hop)) {
		if c.dkimpy, err = startDkimpy(opts.Python); err != nil {
			return nil, err
		}
		defer c.dkimpy.close()
	}
	n := 0
	for _, size := range opts.Sizes {
		for _, class := range opts.Classes {
			if _, ok := expect[class]; !ok {
				return nil, fmt.Errorf("benchmail: unknown class %q", class)
			}
			for i := range opts.PerClass {
				g := &gen{
					c:    c,
					w:    w,
					r:    rand.New(stream(opts.Seed, fmt.Sprintf("msg %s %s %d", class, size.Name, i))),
					date: opts.Start.Add(time.Duration(n) * time.Minute),
					n:    n,
				}
				if worlds != nil {
					g.w = worlds[n]
					if class == ARC1Hop || class == ARC2Hop {
						c.TrustedSealers = append(c.TrustedSealers, g.w.list.domain)
					}
				}
				m, err := g.message(class, size, i)
				if err != nil {
					return nil, fmt.Errorf("benchmail: %s %s %d: %w", class, size.Name, i, err)
				}
				c.Messages = append(c.Messages, *m)
				n++
			}
		}
	}
	return c, nil
}

// gen builds one message.
type gen struct {
	c    *Corpus
	w    *world // the senders of this message
	r    *rand.Rand
	date time.Time
	n    int
}

// draft is a message being built: header fields (raw, CRLF, folded) and
// body.
type draft struct {
	fields []string
	body   string
}

func (d *draft) prepend(raw ...string) { d.fields = append(raw, d.fields...) }

func (d *draft) bytes() []byte {
	var b bytes.Buffer
	for _, f := range d.fields {
		b.WriteString(f)
	}
	b.WriteString("\r\n")
	b.WriteString(d.body)
	return b.Bytes()
}

func (d *draft) setSubject(s string) {
	for i, f := range d.fields {
		if strings.HasPrefix(f, "Subject:") {
			d.fields[i] = "Subject: " + s + "\r\n"
		}
	}
}

func (g *gen) queueID() string { return fmt.Sprintf("%X", g.r.Uint64()&0xffffffffff) }

var firstNames = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"}

func (g *gen) message(class Class, size Size, i int) (*Message, error) {
	w := g.w
	rcpt := fmt.Sprintf("%s%d@%s", firstNames[g.r.IntN(len(firstNames))], g.n%50, rcptDomain)
	m := &Message{
		Name:   fmt.Sprintf("%s.%s.%03d", class, size.Name, i),
		Class:  class,
		Size:   size.Name,
		Expect: expect[class],
	}
	bodyLen := max(size.Bytes-1024, 512)
	env := func(s *sender, ip, helo, from string) {
		m.Envelope = Envelope{ClientIP: ip, HELO: helo, MailFrom: from, Rcpts: []string{rcpt}, Class: string(class)}
	}
	var d *draft
	var err error
	switch class {
	case SPFOnly:
		d = g.draft(w.plain, rcpt, bodyLen)
		env(w.plain, w.plain.ip, "mail."+w.plain.domain, "bounce-"+g.queueID()+"@"+w.plain.domain)
	case DKIMRSA, DKIMEd25519, SPFFail:
		s := w.rsa
		if class == DKIMEd25519 {
			s = w.ed
		}
		d = g.draft(s, rcpt, bodyLen)
		if err = g.sign(d, s); err != nil {
			return nil, err
		}
		if class == SPFFail {
			// A forwarder without SRS: the sender's own MAIL FROM from an
			// address outside its SPF record.
			env(s, "203.0.113.20", "relay."+w.unknown, "news@"+s.domain)
		} else {
			env(s, s.ip, "mail."+s.domain, "news@"+s.domain)
		}
	case DMARCFail:
		d = g.draft(w.bank, rcpt, bodyLen)
		if err = g.sign(d, w.bulk); err != nil {
			return nil, err
		}
		env(w.bank, "203.0.113.40", "mail."+w.bulk.domain, "security@"+w.bank.domain)
	case DMARCQuarantine:
		d = g.draft(w.shop, rcpt, bodyLen)
		env(w.shop, "203.0.113.50", "shop-mailer."+w.unknown, "orders@"+w.shop.domain)
	case DMARCNone:
		d = g.draft(w.relaxed, rcpt, bodyLen)
		if err = g.sign(d, w.relaxed); err != nil {
			return nil, err
		}
		// A gateway rewrote the body after signing.
		d.body += "\r\n[This message was scanned by an external gateway]\r\n"
		env(w.relaxed, "203.0.113.60", "gw."+w.unknown, "team@"+w.relaxed.domain)
	case ARC1Hop, ARC2Hop:
		d = g.draft(w.origin, rcpt, bodyLen)
		if err = g.sign(d, w.origin); err != nil {
			return nil, err
		}
		listFrom := "list-bounces+" + g.queueID() + "@" + w.list.domain
		if err = g.throughList(d, rcpt); err != nil {
			return nil, err
		}
		env(w.list, w.list.ip, "mail."+w.list.domain, listFrom)
		if class == ARC2Hop {
			if err = g.forward(d, rcpt, listFrom); err != nil {
				return nil, err
			}
			env(w.fwd, w.fwd.ip, "mail."+w.fwd.domain, "SRS0="+g.queueID()+"="+w.list.domain+"=list-bounces@"+w.fwd.domain)
		}
	default:
		return nil, fmt.Errorf("unknown class %q", class)
	}
	m.Data = d.bytes()
	return m, nil
}

func (g *gen) dateString(offset time.Duration) string {
	return g.date.Add(offset).Format(time.RFC1123Z)
}

// draft writes a sender's message to rcpt with a body of about bodyLen
// bytes: text/plain when short, multipart/alternative (text and HTML) at
// 20 KB, with a PDF attachment at 200 KB.
func (g *gen) draft(s *sender, rcpt string, bodyLen int) *draft {
	r := g.r
	local := firstNames[r.IntN(len(firstNames))]
	subject := strings.TrimSuffix(prose(r, 40), "\r\n")
	subject = strings.ReplaceAll(subject, "\r\n", " ")
	boundary := fmt.Sprintf("=_%016x", r.Uint64())
	d := &draft{fields: []string{
		fmt.Sprintf("Received: from workstation-%d.corp.%s (unknown [10.1.%d.%d])\r\n\tby mail.%s (Postfix) with ESMTPSA id %s\r\n\tfor <%s>; %s\r\n",
			r.IntN(200), s.domain, r.IntN(255), r.IntN(255), s.domain, g.queueID(), rcpt, g.dateString(-2*time.Second)),
		fmt.Sprintf("Received: from [10.1.%d.%d] (helo=workstation)\r\n\tby submit.%s with esmtpa (Exim 4.96)\r\n\tid %s; %s\r\n",
			r.IntN(255), r.IntN(255), s.domain, g.queueID(), g.dateString(-3*time.Second)),
		"Date: " + g.dateString(0) + "\r\n",
		fmt.Sprintf("From: \"%s %s\" <%s@%s>\r\n", strings.ToUpper(local[:1])+local[1:], strings.ToUpper(s.domain[:1])+strings.TrimSuffix(s.domain[1:], ".example"), local, s.domain),
		"To: <" + rcpt + ">\r\n",
		"Subject: " + subject + "\r\n",
		fmt.Sprintf("Message-ID: <%016x.%d@%s>\r\n", r.Uint64(), g.n, s.domain),
		"MIME-Version: 1.0\r\n",
		"X-Mailer: Benchmail 1.0 (generated)\r\n",
		fmt.Sprintf("List-Unsubscribe: <https://%s/unsubscribe/%016x>,\r\n <mailto:unsubscribe@%s?subject=unsubscribe>\r\n", s.domain, r.Uint64(), s.domain),
	}}
	var body strings.Builder
	switch {
	case bodyLen < 8<<10:
		d.fields = append(d.fields, "Content-Type: text/plain; charset=utf-8; format=flowed\r\n", "Content-Transfer-Encoding: 7bit\r\n")
		body.WriteString(prose(r, bodyLen))
	case bodyLen < 64<<10:
		d.fields = append(d.fields, "Content-Type: multipart/alternative;\r\n boundary=\""+boundary+"\"\r\n")
		text := prose(r, bodyLen*10/23)
		fmt.Fprintf(&body, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n%s\r\n", boundary, text)
		fmt.Fprintf(&body, "--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n%s\r\n--%s--\r\n", boundary, html(text), boundary)
	default:
		d.fields = append(d.fields, "Content-Type: multipart/mixed;\r\n boundary=\""+boundary+"\"\r\n")
		text := prose(r, 3<<10)
		fmt.Fprintf(&body, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n%s\r\n", boundary, text)
		fmt.Fprintf(&body, "--%s\r\nContent-Type: application/pdf; name=\"report-%d.pdf\"\r\nContent-Disposition: attachment; filename=\"report-%d.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", boundary, g.n, g.n)
		body.WriteString(attachment(r, bodyLen-body.Len()-64))
		fmt.Fprintf(&body, "--%s--\r\n", boundary)
	}
	d.body = body.String()
	return d
}

// dkimHeaders are the fields senders sign (RFC 6376 §5.4.1), From first.
var dkimHeaders = []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "List-Unsubscribe"}

// sign adds s's DKIM-Signature (relaxed/relaxed) to d, with go-msgauth.
func (g *gen) sign(d *draft, s *sender) error {
	var out bytes.Buffer
	err := dkim.Sign(&out, bytes.NewReader(d.bytes()), &dkim.SignOptions{
		Domain:                 s.domain,
		Selector:               s.selector,
		Signer:                 s.key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             dkimHeaders,
	})
	if err != nil {
		return fmt.Errorf("dkim sign for %s: %w", s.domain, err)
	}
	sig, _, _ := strings.Cut(out.String(), "\r\n\r\n")
	// The signature is the first field of the output.
	fields, err := message.ReadHeader(bufio.NewReader(strings.NewReader(sig+"\r\n\r\n")), message.Limits{})
	if err != nil || len(fields) == 0 || !strings.EqualFold(fields[0].Name, "DKIM-Signature") {
		return fmt.Errorf("dkim sign for %s: no signature in the output (%v)", s.domain, err)
	}
	d.prepend(string(fields[0].Raw))
	return nil
}

// throughList passes d through the mailing list: it checks the original
// (its Authentication-Results), tags the subject, adds list fields and a
// footer (which breaks the author's DKIM signature) and seals.
func (g *gen) throughList(d *draft, rcpt string) error {
	w := g.w
	results := fmt.Sprintf("dkim=pass header.d=%s header.s=%s header.a=rsa-sha256;\r\n\tspf=pass smtp.mailfrom=%s;\r\n\tdmarc=pass (p=reject) header.from=%s",
		w.origin.domain, w.origin.selector, w.origin.domain, w.origin.domain)
	d.prepend("Authentication-Results: mx." + w.list.domain + ";\r\n\t" + results + "\r\n")
	for _, f := range d.fields {
		if s, ok := strings.CutPrefix(f, "Subject: "); ok {
			d.setSubject("[bench-users] " + strings.TrimSuffix(s, "\r\n"))
			break
		}
	}
	l := w.list.domain
	d.fields = append(d.fields,
		"List-Id: Benchmark users <bench-users."+l+">\r\n",
		"List-Post: <mailto:bench-users@"+l+">\r\n",
		"Precedence: list\r\n",
		"Sender: bench-users-bounces@"+l+"\r\n")
	d.body += "-- \r\nbench-users mailing list -- bench-users@" + l + "\r\nTo unsubscribe send an email to bench-users-leave@" + l + "\r\n"
	d.prepend(fmt.Sprintf("Received: from mail.%s (mail.%s [%s])\r\n\tby mail.%s (Postfix) with ESMTPS id %s\r\n\tfor <bench-users@%s>; %s\r\n",
		w.origin.domain, w.origin.domain, w.origin.ip, l, g.queueID(), l, g.dateString(time.Second)))
	_ = rcpt
	return g.seal(d, w.list, strings.ReplaceAll(strings.ReplaceAll(results, "\r\n\t", " "), ";  ", "; "), 5*time.Second)
}

// forward passes d through a forwarder that changes nothing but adds its
// Received field and seals (RSA-2048).
func (g *gen) forward(d *draft, rcpt, listFrom string) error {
	w := g.w
	results := fmt.Sprintf("arc=pass (i=1) smtp.remote-ip=%s; spf=pass smtp.mailfrom=%s; dkim=fail (body hash mismatch) header.d=%s; dmarc=fail (p=reject) header.from=%s",
		w.list.ip, listFrom, w.origin.domain, w.origin.domain)
	d.prepend(fmt.Sprintf("Received: from mail.%s (mail.%s [%s])\r\n\tby mail.%s (Postfix) with ESMTPS id %s\r\n\tfor <%s>; %s\r\n",
		w.list.domain, w.list.domain, w.list.ip, w.fwd.domain, g.queueID(), rcpt, g.dateString(9*time.Second)))
	return g.seal(d, w.fwd, results, 10*time.Second)
}

// seal adds s's ARC Set to d, sealed by the corpus's sealer (dkimpy or
// our arc.Sealer) with results as the ARC-Authentication-Results payload,
// after validating the chain so far against the corpus zone.
func (g *gen) seal(d *draft, s *sender, results string, offset time.Duration) error {
	raw := d.bytes()
	br := bufio.NewReader(bytes.NewReader(raw))
	fields, err := message.ReadHeader(br, message.Limits{})
	if err != nil {
		return err
	}
	ctx := context.Background()
	v := arc.NewValidator(ctx, g.c.zone, fields, nil)
	if _, err := io.Copy(v, br); err != nil {
		return err
	}
	res := v.Close()
	if res.Status != "none" && res.Status != "pass" {
		return fmt.Errorf("arc: chain before %s's seal is %s: %s", s.domain, res.Status, res.Reason)
	}
	t := g.date.Add(offset)
	srvID := "mx." + s.domain
	if g.c.dkimpy != nil {
		key, ok := s.key.(*rsa.PrivateKey)
		if !ok {
			return fmt.Errorf("dkimpy seals with RSA only, %s has a %T", s.domain, s.key)
		}
		// dkimpy takes the AAR and cv= from the sealer's own
		// Authentication-Results: one that only records them is given
		// to it when the hop did not leave one in the message.
		in := raw
		if !hasResultsOf(fields, srvID) {
			in = append([]byte("Authentication-Results: "+srvID+"; "+results+"\r\n"), raw...)
		}
		set, err := g.c.dkimpy.seal(in, key, s.domain, s.selector, srvID, dkimpyHeaders, t)
		if err != nil {
			return err
		}
		d.prepend(string(set))
		return nil
	}
	sealer := &arc.Sealer{Domain: s.domain, Selector: s.selector, Key: s.key, Now: func() time.Time { return t }}
	set, err := sealer.Seal(fields, v.BodyHash(), res, srvID, results)
	if err != nil {
		return err
	}
	var top []string
	for _, f := range set {
		top = append(top, string(f.Raw))
	}
	d.prepend(top...)
	return nil
}

// dkimpyHeaders is our sealer's AMS h= list less DKIM-Signature, which
// dkimpy refuses to sign in an AMS.
var dkimpyHeaders = slices.DeleteFunc(slices.Clone(arc.DefaultHeaders), func(h string) bool {
	return strings.EqualFold(h, "DKIM-Signature")
})

// hasResultsOf reports whether fields hold an Authentication-Results field
// of authserv-id srvID.
func hasResultsOf(fields []message.Field, srvID string) bool {
	for _, f := range fields {
		if !strings.EqualFold(f.Name, authres.FieldName) {
			continue
		}
		if id, err := authres.AuthServID(f.Value()); err == nil && authres.SameAuthServID(id, srvID) {
			return true
		}
	}
	return false
}

// Sign writes the message read from r signed as class's author signs it
// (DKIM-Signature prepended), for callers that build their own bodies,
// such as a memory benchmark with a very large body. Classes whose author
// does not sign copy r unchanged.
func (c *Corpus) Sign(class Class, w io.Writer, r io.Reader) error {
	var s *sender
	switch class {
	case DKIMRSA, SPFFail:
		s = c.w.rsa
	case DKIMEd25519:
		s = c.w.ed
	case DMARCFail:
		s = c.w.bulk
	case DMARCNone:
		s = c.w.relaxed
	case ARC1Hop, ARC2Hop:
		s = c.w.origin
	default:
		_, err := io.Copy(w, r)
		return err
	}
	return dkim.Sign(w, r, &dkim.SignOptions{
		Domain: s.domain, Selector: s.selector, Signer: s.key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             dkimHeaders,
	})
}
