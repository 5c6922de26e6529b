package arc

import (
	"bufio"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/internal/canon"
	"github.com/authmilter/authmilter/internal/dkimkey"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/verify"
)

// Options tune validation. The zero value (or nil) is the default.
type Options struct {
	MaxInstances int              // 0 → 50, the RFC 8617 §4.2.1 limit; larger values are capped at 50
	Now          func() time.Time // nil → time.Now; ARC has no x= (RFC 8617 §4.1.3), so validation does not depend on it today
	// NoSealBodyHash: the message will not be sealed, so the whole
	// body's relaxed/sha256 hash (Validator.BodyHash) is not computed
	// unless an ARC-Message-Signature of the chain needs it anyway.
	NoSealBodyHash bool
}

func (o *Options) maxInstances() int {
	if o == nil || o.MaxInstances <= 0 || o.MaxInstances > maxInstanceLimit {
		return maxInstanceLimit
	}
	return o.MaxInstances
}

// Set describes one ARC Set of a validated message.
type Set struct {
	Instance int
	Domain   string // ARC-Seal d=
	Selector string // ARC-Seal s=
	AAR      string // the ARC-Authentication-Results value after "i=N;" (authserv-id and results), unfolded
	CV       string // cv= of this seal: "none", "pass", "fail"
	AMSValid bool   // this instance's AMS verified
}

// Result is the outcome of chain validation (RFC 8617 §5.2).
type Result struct {
	// Status is none, pass or fail; temperror when a temporary DNS failure
	// (or the context's deadline) stopped validation. A structurally
	// broken chain is fail, as RFC 8617 §5.2 says (ARC has no permerror).
	Status     verify.Status
	Reason     string // why fail/temperror, short, e.g. "i=2 ARC-Seal signature invalid"
	Err        error  // the underlying error, for logs and errors.Is
	Instances  int    // number of ARC Sets found (the highest instance)
	OldestPass int    // RFC 8617 §5.2 oldest-pass: the lowest instance from which every AMS up to the newest validates; 0 when all do or when not computed
	Sets       []Set  // ordered by instance
}

// Validation errors, wrapped by Result.Err (match with errors.Is).
var (
	// ErrStructure: the ARC Sets are malformed, incomplete, duplicated,
	// numbered with gaps, or carry cv= values out of order (§5.2).
	ErrStructure = errors.New("arc: invalid chain structure")
	// ErrFailedUpstream: the newest ARC-Seal already says cv=fail.
	ErrFailedUpstream = errors.New("arc: chain marked failed by an earlier hop")
	// ErrBodyHash: the AMS bh= does not match the body.
	ErrBodyHash = errors.New("arc: body hash mismatch")
	// ErrSignature: a signature does not verify, or its key is unusable.
	ErrSignature = errors.New("arc: signature invalid")
	// ErrTemporary: a key lookup failed temporarily or timed out.
	ErrTemporary = errors.New("arc: temporary key lookup failure")
)

// Validator validates the ARC chain of one message whose body is streamed
// through Write. Create it with NewValidator once the header is known;
// it starts the key lookups at once, so that they run while the body
// arrives.
type Validator struct {
	ctx    context.Context
	r      dnscache.Resolver
	header []message.Field
	n      int
	aars   []*aar // index instance-1
	amss   []*ams
	seals  []*seal

	early   *Result // decided from the header alone
	body    *canon.BodySet
	fed     int64 // body octets written to this Validator
	full    *canon.BodyHasher
	hashers map[bodyKey]*canon.BodyHasher // from body, per AMS c=/l=
	keys    map[string]*keyFuture
	closed  *Result
	// scratch holds the header data of the signature being checked,
	// sized once (canon.HeaderCap) and reused by every check.
	scratch []byte
}

type bodyKey struct {
	c     canon.Canon
	limit int64
}

// keyFuture is one key lookup, complete or running (dkimkey.Start).
type keyFuture = dkimkey.Future

// NewValidator parses the ARC Sets in header (the message's header fields
// in order, top first, as internal/message reads them), checks their
// structure (RFC 8617 §5.2) and starts the key lookups. ctx bounds the
// lookups and Close.
func NewValidator(ctx context.Context, r dnscache.Resolver, header []message.Field, opts *Options) *Validator {
	return NewValidatorWithBody(ctx, r, header, canon.NewBodySet(), opts)
}

// NewValidatorWithBody is NewValidator taking its body hashes from body, a
// set shared with the other verifiers of the same message (the DKIM
// verifier): an ARC-Message-Signature with the same canonicalisation and
// length as a DKIM signature (RFC 8617 §4.1.2 uses the DKIM body hash)
// shares its body hash. The body may be written to the set directly or to
// any of its consumers, including this Validator; either way it is hashed
// once (see canon.BodySet). Close finishes the shared hashes, so it must
// come after the whole body was written, to every consumer. A nil body
// means a private set.
func NewValidatorWithBody(ctx context.Context, r dnscache.Resolver, header []message.Field, body *canon.BodySet, opts *Options) *Validator {
	if body == nil {
		body = canon.NewBodySet()
	}
	v := &Validator{
		ctx:    ctx,
		r:      r,
		header: header,
		body:   body,
		// hashers and keys are made when a chain needs them: most
		// messages have none.
	}
	if opts == nil || !opts.NoSealBodyHash {
		v.full = body.Hasher(canon.Relaxed, crypto.SHA256, -1)
		v.hashers = map[bodyKey]*canon.BodyHasher{{canon.Relaxed, -1}: v.full}
	}
	if err := v.collect(header, opts.maxInstances()); err != nil {
		v.early = v.failed(err)
		v.n = highestInstance(header)
		v.aars = nil
		return v
	}
	if v.n == 0 {
		v.early = &Result{Status: verify.StatusNone}
		return v
	}
	if err := v.checkStructure(); err != nil {
		v.early = v.failed(err)
		return v
	}
	if v.hashers == nil {
		v.hashers = map[bodyKey]*canon.BodyHasher{}
	}
	v.keys = map[string]*keyFuture{}
	for _, m := range v.amss {
		k := bodyKey{m.bc, m.limit}
		if v.hashers[k] == nil {
			v.hashers[k] = body.Hasher(m.bc, crypto.SHA256, m.limit)
		}
		v.lookup(m.selector, m.domain)
	}
	for _, s := range v.seals {
		v.lookup(s.selector, s.domain)
	}
	return v
}

// collect parses every ARC header field and groups them by instance.
// RFC 8617 §5.2: any malformed ARC Set makes the chain fail.
func (v *Validator) collect(header []message.Field, limit int) error {
	var aars []*aar
	var amss []*ams
	var seals []*seal
	for _, f := range header {
		switch {
		case strings.EqualFold(f.Name, HeaderAAR):
			a, err := parseAAR(f, limit)
			if err != nil {
				return err
			}
			aars = append(aars, a)
		case strings.EqualFold(f.Name, HeaderAMS):
			m, err := parseAMS(f, limit)
			if err != nil {
				return err
			}
			amss = append(amss, m)
		case strings.EqualFold(f.Name, HeaderSeal):
			s, err := parseSeal(f, limit)
			if err != nil {
				return err
			}
			seals = append(seals, s)
		}
	}
	for _, a := range aars {
		v.n = max(v.n, a.instance)
	}
	for _, m := range amss {
		v.n = max(v.n, m.instance)
	}
	for _, s := range seals {
		v.n = max(v.n, s.instance)
	}
	v.aars = make([]*aar, v.n)
	v.amss = make([]*ams, v.n)
	v.seals = make([]*seal, v.n)
	for _, a := range aars {
		if v.aars[a.instance-1] != nil {
			return fmt.Errorf("%w: two %s fields with i=%d", ErrStructure, HeaderAAR, a.instance)
		}
		v.aars[a.instance-1] = a
	}
	for _, m := range amss {
		if v.amss[m.instance-1] != nil {
			return fmt.Errorf("%w: two %s fields with i=%d", ErrStructure, HeaderAMS, m.instance)
		}
		v.amss[m.instance-1] = m
	}
	for _, s := range seals {
		if v.seals[s.instance-1] != nil {
			return fmt.Errorf("%w: two %s fields with i=%d", ErrStructure, HeaderSeal, s.instance)
		}
		v.seals[s.instance-1] = s
	}
	// RFC 8617 §5.2 step 2: every ARC Set has exactly one of each field,
	// and the instances run from 1 to N without gaps (§4.2.1).
	for i := 0; i < v.n; i++ {
		switch {
		case v.aars[i] == nil:
			return fmt.Errorf("%w: no %s with i=%d", ErrStructure, HeaderAAR, i+1)
		case v.amss[i] == nil:
			return fmt.Errorf("%w: no %s with i=%d", ErrStructure, HeaderAMS, i+1)
		case v.seals[i] == nil:
			return fmt.Errorf("%w: no %s with i=%d", ErrStructure, HeaderSeal, i+1)
		}
	}
	return nil
}

// checkStructure applies the cv= rules of RFC 8617 §5.2 steps 3 and 4.
func (v *Validator) checkStructure() error {
	if cv := v.seals[v.n-1].cv; cv == "fail" {
		// Step 3: the newest seal says the chain already failed.
		return fmt.Errorf("%w: i=%d ARC-Seal has cv=fail", ErrFailedUpstream, v.n)
	}
	// Step 4: i=1 has cv=none, every later instance cv=pass.
	for i, s := range v.seals {
		want := "pass"
		if i == 0 {
			want = "none"
		}
		if s.cv != want {
			return fmt.Errorf("%w: i=%d ARC-Seal has cv=%s, want cv=%s", ErrStructure, i+1, s.cv, want)
		}
	}
	return nil
}

func (v *Validator) lookup(selector, domain string) {
	id := strings.ToLower(selector + "._domainkey." + domain)
	if v.keys[id] != nil {
		return
	}
	// A key the resolver has in memory is there at once; only one that
	// needs the network is fetched in the background.
	v.keys[id] = dkimkey.Start(v.ctx, v.r, selector, domain, nil)
}

// Write feeds the next part of the body (CRLF line ends, any chunking).
// It never fails.
func (v *Validator) Write(body []byte) (int, error) {
	if v.closed != nil {
		return 0, errors.New("arc: Write after Close")
	}
	v.fed = v.body.WriteFrom(v.fed, body)
	return len(body), nil
}

// BodyHash returns the relaxed/sha256 hash of the whole body, as an
// ARC-Message-Signature by Sealer needs it. Call it after Close.
// It is nil when Options.NoSealBodyHash was set.
func (v *Validator) BodyHash() []byte {
	if v.full == nil {
		return nil
	}
	return v.full.Sum()
}

// Close ends the body and returns the chain's validation result. It waits
// for the key lookups, but not past ctx's deadline (a lookup cut short is
// temperror). Later calls return the same result.
func (v *Validator) Close() Result {
	if v.closed != nil {
		return *v.closed
	}
	for _, h := range v.hashers {
		h.Sum()
	}
	var res Result
	if v.early != nil {
		res = *v.early
	} else {
		res = v.validate()
	}
	res.Instances = v.n
	if res.Sets == nil {
		res.Sets = v.sets(nil)
	}
	v.closed = &res
	return res
}

// highestInstance returns the highest i= among the ARC fields of header
// that carry a readable one, for a chain that failed to parse: a cv=fail
// seal still goes on top of it (RFC 8617 §5.1.2).
func highestInstance(header []message.Field) int {
	n := 0
	for _, f := range header {
		switch {
		case strings.EqualFold(f.Name, HeaderAAR):
			if a, err := parseAAR(f, maxInstanceLimit); err == nil {
				n = max(n, a.instance)
			}
		case strings.EqualFold(f.Name, HeaderAMS), strings.EqualFold(f.Name, HeaderSeal):
			if i, err := instanceOf(f, maxInstanceLimit); err == nil {
				n = max(n, i)
			}
		}
	}
	return n
}

func (v *Validator) failed(err error) *Result {
	return &Result{Status: verify.StatusFail, Reason: reason(err), Err: err}
}

// reason is the short text of an error, without the package prefix.
func reason(err error) string {
	s := err.Error()
	return strings.TrimPrefix(s, "arc: ")
}

// validate runs RFC 8617 §5.2 steps 5 to 8 on a well-formed chain.
func (v *Validator) validate() Result {
	valid := make([]bool, v.n)
	// A temporary failure leaves the chain undecided only when every other
	// signature steps 5 and 7 require could still validate: when one fails
	// for good, the chain fails whatever the lookup that failed would have
	// said. That lookup may be in the DNS of whoever added the newest set;
	// it must not turn a chain that cannot pass into temperror (which local
	// policy defers on for a trusted sealer's chain).
	var temp error
	// Step 5: the newest AMS.
	if err := v.verifyAMS(v.amss[v.n-1]); err != nil {
		if !errors.Is(err, ErrTemporary) {
			return v.errResult(err, valid)
		}
		temp = err
	} else {
		valid[v.n-1] = true
	}
	// Step 6: oldest-pass, from the newest AMS down to the first that
	// fails. An AMS whose key lookup failed temporarily counts as not
	// validating here: oldest-pass is informational (§5.2).
	oldest := 0
	for i := v.n - 2; i >= 0; i-- {
		if v.verifyAMS(v.amss[i]) != nil {
			oldest = i + 2
			break
		}
		valid[i] = true
	}
	// Older AMSes above a failing one are still reported in Sets.
	if oldest > 0 {
		for i := oldest - 3; i >= 0; i-- {
			valid[i] = v.verifyAMS(v.amss[i]) == nil
		}
	}
	// Step 7: every AS, newest first.
	for i := v.n - 1; i >= 0; i-- {
		if err := v.verifySeal(i + 1); err != nil {
			if !errors.Is(err, ErrTemporary) {
				return v.errResult(err, valid)
			}
			if temp == nil {
				temp = err
			}
		}
	}
	if temp != nil {
		return v.errResult(temp, valid)
	}
	// Step 8.
	return Result{Status: verify.StatusPass, OldestPass: oldest, Sets: v.sets(valid)}
}

func (v *Validator) errResult(err error, valid []bool) Result {
	r := Result{Status: verify.StatusFail, Reason: reason(err), Err: err, Sets: v.sets(valid)}
	if errors.Is(err, ErrTemporary) {
		r.Status = verify.StatusTemperror
	}
	return r
}

func (v *Validator) sets(valid []bool) []Set {
	if v.n == 0 || v.aars == nil {
		return nil
	}
	out := make([]Set, 0, v.n)
	for i := 0; i < v.n; i++ {
		s := Set{Instance: i + 1}
		if a := v.aars[i]; a != nil {
			s.AAR = a.text
		}
		if se := v.seals[i]; se != nil {
			s.Domain, s.Selector, s.CV = se.domain, se.selector, se.cv
		}
		if valid != nil {
			s.AMSValid = valid[i]
		}
		out = append(out, s)
	}
	return out
}

// verifyAMS checks one AMS: body hash, then the header signature (RFC 8617
// §5.2 step 5, by the DKIM rules of RFC 6376 §6.1.3).
func (v *Validator) verifyAMS(m *ams) error {
	bh := v.hashers[bodyKey{m.bc, m.limit}].Sum()
	if !equal(bh, m.bodyHash) {
		return fmt.Errorf("%w: i=%d %s", ErrBodyHash, m.instance, HeaderAMS)
	}
	buf := v.headerBuf()
	for _, f := range canon.Select(v.header, m.headers) {
		buf = canon.AppendHeader(buf, m.hc, f.Raw)
	}
	buf = appendSelf(buf, m.hc, m.field)
	digest := sha256.Sum256(buf)
	v.scratch = buf
	return v.verifySig(m.instance, HeaderAMS, m.alg, m.selector, m.domain, digest[:], m.sig)
}

// headerBuf returns v.scratch emptied, made the first time.
func (v *Validator) headerBuf() []byte {
	if v.scratch == nil {
		v.scratch = make([]byte, 0, canon.HeaderCap(v.header))
	}
	return v.scratch[:0]
}

// verifySeal checks the AS of instance i over the ARC Sets 1..i (RFC 8617
// §5.1.1: for each instance in increasing order, AAR, AMS, AS; relaxed
// header canonicalization; the AS being checked last, with an empty b=).
func (v *Validator) verifySeal(i int) error {
	buf := appendSealScope(v.headerBuf(), v.aars[:i], v.amss[:i], v.seals[:i-1])
	s := v.seals[i-1]
	buf = appendSelf(buf, canon.Relaxed, s.field)
	digest := sha256.Sum256(buf)
	v.scratch = buf
	return v.verifySig(i, HeaderSeal, s.alg, s.selector, s.domain, digest[:], s.sig)
}

// appendSealScope appends the relaxed canonical form of the ARC Sets
// given, in the order of RFC 8617 §5.1.1, leaving out the last AS (which
// the caller appends as the signature's own field).
func appendSealScope(buf []byte, aars []*aar, amss []*ams, seals []*seal) []byte {
	for j := range aars {
		buf = canon.AppendHeader(buf, canon.Relaxed, aars[j].field.Raw)
		buf = canon.AppendHeader(buf, canon.Relaxed, amss[j].field.Raw)
		if j < len(seals) {
			buf = canon.AppendHeader(buf, canon.Relaxed, seals[j].field.Raw)
		}
	}
	return buf
}

// appendSelf appends the signature field itself with b= emptied and
// without its final CRLF (RFC 6376 §3.7).
func appendSelf(buf []byte, c canon.Canon, f message.Field) []byte {
	buf = canon.AppendHeader(buf, c, canon.StripSignature(f.Raw))
	return buf[:len(buf)-2]
}

func (v *Validator) verifySig(instance int, header string, alg algorithm, selector, domain string, digest, sig []byte) error {
	f := v.keys[strings.ToLower(selector+"._domainkey."+domain)]
	if !f.Wait(v.ctx) {
		return fmt.Errorf("%w: i=%d %s key %s: %v", ErrTemporary, instance, header, dkimkey.Name(selector, domain), v.ctx.Err())
	}
	k, err := f.Result()
	if err != nil {
		if errors.Is(err, dnscache.ErrTemporary) {
			return fmt.Errorf("%w: i=%d %s: %w", ErrTemporary, instance, header, err)
		}
		return fmt.Errorf("%w: i=%d %s: %w", ErrSignature, instance, header, err)
	}
	if k.Type != alg.keyType() {
		return fmt.Errorf("%w: i=%d %s a=%s with a k=%s key", ErrSignature, instance, header, alg, k.Type)
	}
	if !k.AllowsHash("sha256") {
		return fmt.Errorf("%w: i=%d %s: %w", ErrSignature, instance, header, dkimkey.ErrHashNotAllowed)
	}
	if err := k.Verify(crypto.SHA256, digest, sig); err != nil {
		return fmt.Errorf("%w: i=%d %s: %w", ErrSignature, instance, header, err)
	}
	return nil
}

func equal(a, b []byte) bool { return string(a) == string(b) }

// Validate validates the ARC chain of a whole message read from msg (LF or
// CRLF line ends). The error reports a message that cannot be read or
// parsed; the chain's verdict is in the Result.
func Validate(ctx context.Context, r dnscache.Resolver, msg io.Reader, opts *Options) (Result, error) {
	// One 16 KiB buffer serves the header and the body chunks (BodyCRLF
	// reuses a bufio.Reader at least as large as its chunk).
	const chunk = 16 * 1024
	br := bufio.NewReaderSize(msg, chunk)
	header, err := message.ReadHeader(br, message.Limits{})
	if err != nil {
		return Result{}, fmt.Errorf("arc: reading header: %w", err)
	}
	v := NewValidator(ctx, r, header, opts)
	if err := message.BodyCRLF(br, chunk, func(p []byte) error {
		_, err := v.Write(p)
		return err
	}); err != nil {
		return Result{}, fmt.Errorf("arc: reading body: %w", err)
	}
	return v.Close(), nil
}
