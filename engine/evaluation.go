package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/dkimsign"
	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/internal/canon"
	"github.com/authmilter/authmilter/internal/dkimkey"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/authres"
	"github.com/authmilter/authmilter/verify/dkim"
	"github.com/authmilter/authmilter/verify/dmarc"
	"github.com/authmilter/authmilter/verify/iprev"
	"github.com/authmilter/authmilter/verify/spf"
)

// safeName returns a header field name fit for a log line and a header
// comment: printable ASCII without spaces, cut to 64 bytes.
func safeName(s string) string {
	b := []byte(s)
	if len(b) > 64 {
		b = b[:64]
	}
	for i, c := range b {
		if c <= ' ' || c > '~' || c == '"' || c == '\\' || c == '(' || c == ')' || c == ';' {
			b[i] = '?'
		}
	}
	return string(b)
}

// ErrHeaderLimit is the reason a message's header section was not
// verified: it exceeded Engine.MaxHeaderBytes, MaxHeaders or
// MaxHeaderFieldBytes.
var ErrHeaderLimit = errors.New("header section over the configured limit")

// Evaluation is the judgement of one message in progress, fed in the
// order an MTA sends it: Engine.Begin (at MAIL FROM), AddRcpt, Header for
// each field, EndOfHeaders, Body for each chunk, then End (the stages are
// listed in the package doc). Work starts as soon as its inputs exist:
// SPF at Begin, with the DMARC discovery of the MAIL FROM domain that the
// envelope predicts (speculate.go); DKIM and ARC key lookups and DMARC
// policy discovery at EndOfHeaders; body hashes as chunks arrive. Work whose DNS answers the
// resolver has in memory (a warm cache, dnscache.HonoursCacheOnly) is done then and
// there, on the caller's goroutine: starting a goroutine would cost more.
// Only work that needs the network runs in the background, hiding its
// latency behind the rest of the message. An Evaluation is used by one
// goroutine at a time.
type Evaluation struct {
	e        *Engine
	env      Envelope
	ctx      context.Context
	cancel   context.CancelFunc
	start    time.Time
	internal bool
	// keyRes is the resolver of DKIM and ARC key lookups: Engine.Resolver
	// with Engine.Keys.
	keyRes dkimkey.KeyResolver

	spfDone  chan struct{}
	spfMail  spf.Result
	spfHELO  spf.Result
	heloDone bool // spfHELO holds a separate HELO check

	fields      []message.Field
	headerBytes int
	limitErr    error
	arSeen      int   // Authentication-Results fields seen so far
	forged      []int // 1-based indexes of those claiming our authserv-id

	eoh bool
	// dmarcOpts are the DMARC options with the policy discovery started
	// at end of headers; nil when none was started.
	dmarcOpts *dmarc.Options
	// authors are the Author Domains of From, found at end of headers
	// (nil when From did not parse: Evaluate reports why).
	authors []string
	dkimV   *dkim.Verifier
	arcV    *arc.Validator
	// signKeys are the DKIM keys that sign this (unjudged) message;
	// signHash its body hash, fed through arcV or signBody.
	signKeys []dkimsign.Key
	signHash *canon.BodyHasher
	signBody *canon.BodySet
	signSkip string // why an unjudged message is not signed
	ended    bool

	// spec counts the speculative lookups started at MAIL FROM; specDone
	// is closed when they are over. Both nil when none was started.
	spec     *specResolver
	specDone chan struct{}
}

// Envelope returns the message's SMTP facts.
func (m *Evaluation) Envelope() Envelope { return m.env }

// AddRcpt records a recipient.
func (m *Evaluation) AddRcpt(rcpt string) { m.env.Rcpts = append(m.env.Rcpts, rcpt) }

// SetQueueID records the MTA's queue id once known.
func (m *Evaluation) SetQueueID(id string) {
	if id != "" {
		m.env.QueueID = id
	}
}

// startSPF starts the SPF checks and reports whether they were done from
// memory (a warm cache).
func (m *Evaluation) startSPF() (warm bool) {
	m.spfDone = make(chan struct{})
	env := m.env
	local, domain := spf.SplitSender(env.MailFrom)
	args := spf.Args{
		IP:             env.ClientIP,
		MailFromLocal:  local,
		MailFromDomain: domain,
		HELO:           env.HELO,
		Receiver:       m.e.AuthservID,
	}
	// RFC 7208 §2.3: the HELO identity is checked too; for a null
	// reverse-path the MAIL FROM check already is that check (§2.4).
	checkHELO := env.MailFrom != "" && env.HELO != ""
	check := func(ctx context.Context) {
		m.spfMail = spf.VerifyWithOptions(ctx, m.e.Resolver, args, m.e.SPF)
		if checkHELO {
			m.spfHELO = spf.VerifyHELOWithOptions(ctx, m.e.Resolver, args, m.e.SPF)
			m.heloDone = true
		}
	}
	// With the answers in memory (a warm cache), the check is done here:
	// a goroutine would cost more than the check. Otherwise it runs in
	// the background while the message arrives.
	if dnscache.FromMemory(m.ctx, m.e.Resolver, check) {
		close(m.spfDone)
		return true
	}
	m.spfHELO, m.heloDone = spf.Result{}, false
	go func() {
		defer close(m.spfDone)
		if !checkHELO {
			check(m.ctx)
			return
		}
		// The two identities at once: their round trips overlap.
		helo := make(chan struct{})
		go func() {
			defer close(helo)
			m.spfHELO = spf.VerifyHELOWithOptions(m.ctx, m.e.Resolver, args, m.e.SPF)
		}()
		m.spfMail = spf.VerifyWithOptions(m.ctx, m.e.Resolver, args, m.e.SPF)
		<-helo
		m.heloDone = true
	}()
	return false
}

// Header adds one header field as received. Fields over the limits are not
// kept, but Authentication-Results fields are still counted so that forged
// ones can be removed.
func (m *Evaluation) Header(f message.Field) {
	// RFC 5322 §4.5.3: WSP may precede the colon, and an MTA may pass the
	// name with it; the field is still the one named.
	f.Name = strings.TrimRight(f.Name, " \t")
	if strings.EqualFold(f.Name, "Authentication-Results") {
		m.arSeen++
		if id, err := authres.AuthServID(f.Value()); err == nil && authres.SameAuthServID(id, m.e.AuthservID) {
			m.forged = append(m.forged, m.arSeen)
		}
	}
	if m.limitErr != nil {
		return
	}
	m.headerBytes += len(f.Raw)
	maxBytes, maxFields, maxField := m.e.MaxHeaderBytes, m.e.MaxHeaders, m.e.MaxHeaderFieldBytes
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	if maxFields <= 0 {
		maxFields = 1000
	}
	if maxField <= 0 {
		maxField = 64 << 10
	}
	switch {
	case len(f.Raw) > maxField:
		m.limitErr = fmt.Errorf("%w: a %s field of more than %d bytes", ErrHeaderLimit, safeName(f.Name), maxField)
	case m.headerBytes > maxBytes:
		m.limitErr = fmt.Errorf("%w: more than %d bytes", ErrHeaderLimit, maxBytes)
	case len(m.fields) >= maxFields:
		m.limitErr = fmt.Errorf("%w: more than %d fields", ErrHeaderLimit, maxFields)
	default:
		m.fields = append(m.fields, f)
		return
	}
	m.fields = nil
}

// EndOfHeaders starts DKIM verification, ARC validation (their key lookups
// run now) and DMARC policy discovery for the From domains: at once for
// what the resolver has in memory, in the background for the rest.
func (m *Evaluation) EndOfHeaders() {
	if m.eoh {
		return
	}
	m.eoh = true
	if m.limitErr != nil {
		return
	}
	if m.internal {
		// One body set: the DKIM signatures' body hash (relaxed/sha256,
		// whole body) is the one an ARC seal needs, hashed once.
		body := canon.NewBodySet()
		m.startSigning(body)
		if m.e.Sealer != nil && m.e.Policy.SealInternal {
			m.arcV = arc.NewValidatorWithBody(m.ctx, &m.keyRes, m.fields, body, m.e.ARC)
		}
		if m.signHash != nil && m.arcV == nil {
			m.signBody = body
		}
		return
	}
	// One set of body hashes for both: a DKIM signature and an
	// ARC-Message-Signature with the same c= and l= share one, and Body
	// writing a chunk to both hashes it once.
	body := canon.NewBodySet()
	m.dkimV = dkim.NewVerifierWithBody(m.ctx, &m.keyRes, m.fields, body, m.e.DKIM)
	m.arcV = arc.NewValidatorWithBody(m.ctx, &m.keyRes, m.fields, body, m.arcOptions())
	from := m.fieldValues("From")
	if authors, err := dmarc.AuthorDomains(from); err == nil {
		opts := dmarc.Options{}
		if m.e.DMARC != nil {
			opts = *m.e.DMARC
		}
		if opts.Finder == nil {
			opts.Finder = dmarc.TreeWalk{}
		}
		if len(authors) > opts.AuthorLimit() {
			return // Evaluate gives permerror without discovery
		}
		m.authors = authors
		// Policy discovery now; Evaluate at End reuses what was found.
		p := &prefetched{OrgDomainFinder: opts.Finder, done: make(chan struct{}), found: map[string]dmarc.Discovery{}}
		opts.Finder = p
		m.dmarcOpts = &opts
		// Authors whose policy the resolver has in memory are discovered
		// here; only the rest in the background.
		var rest []string
		for _, a := range authors {
			var d dmarc.Discovery
			var err error
			if !dnscache.FromMemory(m.ctx, m.e.Resolver, func(ctx context.Context) { d, err = p.OrgDomainFinder.Discover(ctx, m.e.Resolver, a) }) {
				rest = append(rest, a)
			} else if err == nil {
				p.found[a] = d
			}
		}
		if len(rest) == 0 {
			close(p.done)
			return
		}
		go func() {
			defer close(p.done)
			for _, a := range rest {
				if d, err := p.OrgDomainFinder.Discover(m.ctx, m.e.Resolver, a); err == nil {
					p.found[a] = d
				}
			}
		}()
	}
}

// arcOptions returns the engine's ARC options; without a sealer, the whole
// body's hash for a seal is not computed (a relaxed canonicalisation and a
// SHA-256 pass over every body, otherwise).
func (m *Evaluation) arcOptions() *arc.Options {
	if m.e.Sealer != nil {
		return m.e.ARC
	}
	o := arc.Options{}
	if m.e.ARC != nil {
		o = *m.e.ARC
	}
	o.NoSealBodyHash = true
	return &o
}

// prefetched is an OrgDomainFinder that answers Discover with what the
// discovery started at end of headers found, and asks its own finder for
// anything else (an author it did not get to, or one whose discovery
// failed, which is then retried).
type prefetched struct {
	dmarc.OrgDomainFinder
	done  chan struct{}
	found map[string]dmarc.Discovery // written before done is closed
}

func (p *prefetched) Discover(ctx context.Context, r dnscache.Resolver, author string) (dmarc.Discovery, error) {
	select {
	case <-p.done:
		if d, ok := p.found[author]; ok {
			return d, nil
		}
	case <-ctx.Done():
	}
	return p.OrgDomainFinder.Discover(ctx, r, author)
}

func (m *Evaluation) fieldValues(name string) []string {
	var out []string
	for _, f := range m.fields {
		if strings.EqualFold(f.Name, name) {
			out = append(out, f.Value())
		}
	}
	return out
}

// Body feeds a chunk of the body (CRLF line ends). The DKIM verifier and
// the ARC validator share their body hashes: the chunk is hashed once.
func (m *Evaluation) Body(chunk []byte) {
	if !m.eoh {
		m.EndOfHeaders()
	}
	if m.dkimV != nil {
		_, _ = m.dkimV.Write(chunk)
	}
	if m.arcV != nil {
		_, _ = m.arcV.Write(chunk) // also feeds the signing hash
	}
	if m.signBody != nil {
		_, _ = m.signBody.Write(chunk)
	}
}

// Abort ends the message without a verdict (the MTA aborted it) and
// releases everything it holds. It is safe to call after End.
func (m *Evaluation) Abort() {
	if m.dkimV != nil {
		m.dkimV.Abort()
	}
	if m.arcV != nil {
		// Close after cancel returns at once.
		m.cancel()
		m.arcV.Close()
	}
	m.cancel()
	m.ended = true
}

// Verdict is the outcome of a message: the action, the SMTP reply, the
// header changes, and every result for logs and the check command.
type Verdict struct {
	Action Action
	Reply  string // for reject and tempfail
	// QuarantineReason is given to the MTA with the quarantine action.
	QuarantineReason string
	// Override says why Action differs from what the DMARC policy asked,
	// if it does (the same words in A-R, the log line and check).
	Override Override
	// Internal: the message was not judged (internal network or
	// authenticated submission).
	Internal bool

	// RemoveAR lists the 1-based indexes, among the message's
	// Authentication-Results fields, of those that claim our authserv-id
	// (forged, RFC 8601 §5), highest first so that each removal leaves the
	// other indexes valid.
	RemoveAR []int
	// Insert holds the fields to add at the top of the header, in their
	// final order from the top: ARC set (when sealing), then
	// Authentication-Results, then Received-SPF.
	Insert []message.Field
	// AuthResults is the value of our Authentication-Results field ("" when
	// the message was not judged).
	AuthResults string

	// Speculative counts the DNS queries started at MAIL FROM for what the
	// envelope predicted (the MAIL FROM domain's DMARC discovery) by the
	// time of the verdict.
	Speculative int

	IPRev   *iprev.Result // the client's iprev check (nil when off)
	SPF     *spf.Result   // the MAIL FROM identity (nil when not judged)
	HELO    *spf.Result   // the HELO identity, when checked separately
	DKIM    []dkim.Signature
	DMARC   *dmarc.Result
	ARC     *arc.Result
	SealErr error // why an ARC set could not be added
	// Signed are the DKIM signatures added (mail not judged, from a
	// signing source, whose From domain has keys); SignErr why none could
	// be.
	Signed  []dkimsign.Signature
	SignErr error
	// SignSkipped says why mail that is not judged was not signed when
	// signing is configured ("no key for example.org", ...).
	SignSkipped string
	Sealed      bool
	LimitErr    error // the header section exceeded a limit
	Elapsed     time.Duration
}

// End finishes the message: it waits (at most Engine.Timeout) for the
// results still outstanding, evaluates DMARC, applies the policy, and
// returns the verdict. The Evaluation must not be used afterwards.
func (m *Evaluation) End() *Verdict {
	if !m.eoh {
		m.EndOfHeaders()
	}
	stop := time.AfterFunc(m.e.timeout(), m.cancel)
	defer stop.Stop()
	defer m.cancel()
	m.ended = true

	v := &Verdict{Action: ActionAccept, Internal: m.internal, LimitErr: m.limitErr}
	for i := len(m.forged) - 1; i >= 0; i-- {
		v.RemoveAR = append(v.RemoveAR, m.forged[i])
	}

	if m.internal {
		// Sign first: the ARC-Message-Signature covers the new
		// DKIM-Signature fields.
		m.sign(v)
		if m.arcV != nil {
			r := m.arcV.Close()
			v.ARC = &r
			m.seal(v, nil)
		}
		v.Elapsed = m.e.now().Sub(m.start)
		m.finish(v)
		return v
	}

	// SPF, started at MAIL FROM.
	select {
	case <-m.spfDone:
	case <-m.ctx.Done():
		<-m.spfDone // every lookup honours the context: this is short
	}
	v.SPF = &m.spfMail
	if m.heloDone {
		v.HELO = &m.spfHELO
	}

	// SPF twice, DMARC, ARC, and DKIM: room for two signatures.
	results := make([]authres.Result, 0, 7)
	results = m.appendIPRev(v, results)
	results = append(results, publicSPF(m.spfMail))
	if v.HELO != nil {
		results = append(results, publicSPF(*v.HELO))
	}

	var dr dmarc.Result
	if m.limitErr != nil {
		v.ARC = &arc.Result{Status: verify.StatusPermerror, Reason: m.limitErr.Error(), Err: m.limitErr}
		dr = dmarc.Result{Status: verify.StatusPermerror, Reason: m.limitErr.Error(), Err: m.limitErr}
		results = append(results, authres.Result{Method: "dkim", Value: verify.StatusPermerror, Reason: m.limitErr.Error()})
	} else {
		v.DKIM = m.dkimV.Close()
		ar := m.arcV.Close()
		v.ARC = &ar
		allB := make([]string, 0, len(v.DKIM))
		for _, s := range v.DKIM {
			allB = append(allB, s.B)
		}
		if len(v.DKIM) == 0 {
			results = append(results, authres.Result{Method: "dkim", Value: verify.StatusNone})
		}
		for _, s := range v.DKIM {
			results = append(results, publicDKIM(s, allB))
		}
		opts := m.e.DMARC
		if m.dmarcOpts != nil {
			opts = m.dmarcOpts
		}
		dr = dmarc.Evaluate(m.ctx, m.e.Resolver, m.dmarcArgs(v), opts)
	}
	v.DMARC = &dr

	d := m.e.Policy.DecideFacts(m.facts(v))
	v.Action, v.Reply, v.Override = d.Action, d.Reply, d.Override
	if v.Action == ActionQuarantine {
		v.QuarantineReason = quarantineReason(&dr, d.Override)
	}
	results = append(results, publicDMARC(dr, d.Override))
	results = append(results, publicARC(*v.ARC, m.env.ClientIP))

	v.AuthResults = authres.Format(m.e.AuthservID, results)
	if v.Action != ActionReject && v.Action != ActionTempfail {
		m.seal(v, results)
		v.Insert = append(v.Insert, authres.FieldOf(v.AuthResults))
		if m.e.ReceivedSPF {
			v.Insert = append(v.Insert, message.FromMilter("Received-SPF", receivedSPF(m.spfMail, m.e.AuthservID), false))
		}
	}
	v.Speculative = m.speculative()
	v.Elapsed = m.e.now().Sub(m.start)
	m.e.Sealers.Record(v)
	m.finish(v)
	m.report(v)
	return v
}

func joinComment(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func (m *Evaluation) dmarcArgs(v *Verdict) dmarc.Args {
	args := dmarc.Args{From: m.fieldValues("From"), Authors: m.authors}
	s := m.spfMail
	args.SPF = dmarc.SPF{Status: s.Status, Domain: s.Domain, Identity: dmarc.IdentityMailFrom}
	if s.Identity == spf.IdentityHELO || m.env.MailFrom == "" {
		args.SPF.Identity = dmarc.IdentityHELO
	}
	for _, sig := range v.DKIM {
		args.DKIM = append(args.DKIM, dmarc.DKIM{Status: sig.Status, Domain: sig.Domain, Selector: sig.Selector})
	}
	return args
}

// seal adds an ARC set when a sealer is configured. results are this hop's
// results (nil for a message that was not judged).
func (m *Evaluation) seal(v *Verdict, results []authres.Result) {
	s := m.e.Sealer
	if s == nil || m.arcV == nil || v.ARC == nil {
		return
	}
	if v.ARC.Status == verify.StatusTemperror {
		v.SealErr = errors.New("arc: chain not sealed: its validation hit a temporary DNS failure")
		return
	}
	// The header as passed on: the fields added so far (DKIM signatures),
	// then the message's without the forged ones we remove.
	hdr := append(append([]message.Field(nil), v.Insert...), m.fields...)
	if len(m.forged) > 0 {
		hdr = append(make([]message.Field, 0, len(v.Insert)+len(m.fields)), v.Insert...)
		n := 0
		for _, f := range m.fields {
			if strings.EqualFold(f.Name, "Authentication-Results") {
				n++
				if containsInt(m.forged, n) {
					continue
				}
			}
			hdr = append(hdr, f)
		}
	}
	text := "none"
	if len(results) > 0 {
		text = authres.FormatResults(results)
	}
	set, err := s.Seal(hdr, m.arcV.BodyHash(), *v.ARC, m.e.AuthservID, text)
	if err != nil {
		v.SealErr = err
		return
	}
	v.Sealed = true
	v.Insert = append(set, v.Insert...)
}

func containsInt(list []int, n int) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}

// ApplyHeader returns fields as the MTA passes them on after the verdict's
// header changes: forged Authentication-Results removed, new fields at the
// top. It is what the check command prints; the milter session sends the
// same changes through the protocol.
func ApplyHeader(fields []message.Field, v *Verdict) []message.Field {
	out := append([]message.Field(nil), v.Insert...)
	n := 0
	for _, f := range fields {
		if strings.EqualFold(f.Name, "Authentication-Results") {
			n++
			if containsInt(v.RemoveAR, n) {
				continue
			}
		}
		out = append(out, f)
	}
	return out
}
