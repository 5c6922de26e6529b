package dkim

import (
	"context"
	"crypto"
	"crypto/sha256"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/internal/canon"
	"github.com/authmilter/authmilter/internal/dkimkey"
	"github.com/authmilter/authmilter/internal/message"
)

// DefaultMaxSignatures is the number of DKIM-Signature fields verified when
// Options.MaxSignatures is 0.
const DefaultMaxSignatures = 5

// Options tune verification. A nil *Options means the defaults.
type Options struct {
	// MaxSignatures caps the signatures verified, in header order; the
	// rest are reported as policy ("not checked: more than N signatures").
	// 0 means DefaultMaxSignatures.
	MaxSignatures int
	// Now is the clock x= (signature expiry) is checked against when the
	// body ends; nil means time.Now.
	Now func() time.Time
}

func (o *Options) max() int {
	if o == nil || o.MaxSignatures <= 0 {
		return DefaultMaxSignatures
	}
	return o.MaxSignatures
}

func (o *Options) now() time.Time {
	if o == nil || o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// Verifier states.
const (
	stateOpen int32 = iota
	stateClosed
	stateAborted
)

// Verifier verifies the DKIM signatures of one message fed to it in
// pieces: the header to NewVerifier, the body to Write, then Close. The
// body is canonicalised and hashed as it is written, on the caller's
// goroutine, and never held in memory; key lookups start at NewVerifier,
// in the background unless the resolver has the keys in memory
// (dnscache.HonoursCacheOnly: a warm Cache starts no goroutine). Write, Close and Abort may be called from different
// goroutines, but Write calls must not overlap one another.
type Verifier struct {
	ctx    context.Context
	cancel context.CancelFunc
	opts   *Options
	max    int

	sigs   []*sigState // one per DKIM-Signature field, header order
	nCheck int         // the first nCheck are verified: min(len(sigs), max)

	state atomic.Int32
	mu    sync.Mutex     // held by Write while hashing, and by Close
	body  *canon.BodySet // private, or shared with an ARC validator
	fed   int64          // body octets written to this Verifier

	keys   map[string]*dkimkey.Future
	keysWG sync.WaitGroup

	closeMu sync.Mutex
	result  []Signature
}

// sigState is one signature while the message is verified.
type sigState struct {
	tags     *sigTags
	parseErr error             // RFC 6376 §3.2/§3.5 syntax, from parseSignature
	checkErr error             // RFC 6376 §6.1.1 checks that need neither key nor clock
	key      *dkimkey.Future   // nil when not checked
	body     *canon.BodyHasher // nil when the body hash is never needed
	digest   [sha256.Size]byte // SHA-256 of the signed header data (RFC 6376 §3.7)
}

// NewVerifier starts verifying a message whose header fields (raw, with
// CRLF, in order) are given. Key lookups start at once, on ctx, which also
// bounds Close; r is typically the daemon's caching resolver. opts may be
// nil. The Verifier keeps no reference to header.
func NewVerifier(ctx context.Context, r dnscache.Resolver, header []message.Field, opts *Options) *Verifier {
	return NewVerifierWithBody(ctx, r, header, canon.NewBodySet(), opts)
}

// NewVerifierWithBody is NewVerifier taking its body hashes from body, a
// set shared with the other verifiers of the same message (the ARC
// validator): a signature that needs the same canonicalisation, hash and
// length as another shares its body hash (see canon.BodySet). The body may
// be written to the set directly or to any of its consumers, including
// this Verifier; either way it is hashed once. Close finishes the shared
// hashes, so it must come after the whole body was written, to every
// consumer. A nil body means a private set.
func NewVerifierWithBody(ctx context.Context, r dnscache.Resolver, header []message.Field, body *canon.BodySet, opts *Options) *Verifier {
	if body == nil {
		body = canon.NewBodySet()
	}
	ctx, cancel := context.WithCancel(ctx)
	v := &Verifier{ctx: ctx, cancel: cancel, opts: opts, max: opts.max(), body: body}
	for _, f := range header {
		if !strings.EqualFold(f.Name, fieldName) {
			continue
		}
		st, err := parseSignature(f.Value())
		s := &sigState{tags: st, parseErr: err}
		if err == nil {
			s.checkErr = st.checkSignature()
		}
		v.sigs = append(v.sigs, s)
	}
	v.nCheck = min(len(v.sigs), v.max)
	if len(v.sigs) == 0 {
		cancel()
		return v
	}

	// RFC 6376 §6.1 allows a limit on the signatures verified; the header
	// is taken whole, so a signature that covers another DKIM-Signature
	// field still verifies. Only signatures that can still pass get a
	// body hash and a header hash.
	var scratch []byte
	i := 0
	for _, f := range header {
		if !strings.EqualFold(f.Name, fieldName) {
			continue
		}
		s := v.sigs[i]
		i++
		if i > v.nCheck || s.parseErr != nil {
			continue
		}
		// Every checked signature gets its key: Signature reports the
		// key's size and flags even when the signature fails.
		s.key = v.lookup(r, s.tags.selector, s.tags.domain)
		st := s.tags
		if s.checkErr != nil || st.canonErr != nil || st.hasLength {
			continue
		}
		if _, h := st.algorithms(); h != "sha256" {
			// rsa-sha1 is refused before hashing (RFC 8301 §3.1); other
			// hashes are unknown.
			continue
		}
		s.body = body.Hasher(st.bc, crypto.SHA256, -1)
		if scratch == nil {
			scratch = make([]byte, 0, canon.HeaderCap(header))
		}
		scratch = headerData(scratch[:0], header, st, f)
		s.digest = sha256.Sum256(scratch)
	}
	return v
}

// headerData appends the data a signature covers besides the body hash
// (RFC 6376 §3.7): the fields h= selects (§5.4.2), canonicalised with the
// header algorithm of c=, then the DKIM-Signature field itself with b=
// empty and without its final CRLF.
func headerData(buf []byte, header []message.Field, st *sigTags, self message.Field) []byte {
	for _, f := range canon.Select(header, st.headers) {
		buf = canon.AppendHeader(buf, st.hc, f.Raw)
	}
	buf = canon.AppendHeader(buf, st.hc, canon.StripSignature(self.Raw))
	return buf[:len(buf)-2]
}

// lookup starts the lookup of a key, or returns the one already started
// for the same selector and domain. A key the resolver has in memory is
// there at once; only one that needs the network is fetched in the
// background (see dkimkey.Start).
func (v *Verifier) lookup(r dnscache.Resolver, selector, domain string) *dkimkey.Future {
	id := strings.ToLower(dkimkey.Name(selector, domain))
	if f := v.keys[id]; f != nil {
		return f
	}
	if v.keys == nil {
		v.keys = map[string]*dkimkey.Future{}
	}
	f := dkimkey.Start(v.ctx, r, selector, domain, &v.keysWG)
	v.keys[id] = f
	return f
}

// Write passes body bytes (CRLF line ends, any chunking) to the body
// hashes, on the caller's goroutine. It returns ErrAborted after Abort
// and ErrClosed after Close; it never waits for a key lookup.
func (v *Verifier) Write(body []byte) (int, error) {
	switch v.state.Load() {
	case stateAborted:
		return 0, ErrAborted
	case stateClosed:
		return 0, ErrClosed
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fed = v.body.WriteFrom(v.fed, body)
	return len(body), nil
}

// Close ends the body and returns one Signature per DKIM-Signature field,
// in header order (an empty slice when there is none). It does not wait
// past the context's end: signatures whose key has not arrived by then are
// temperror. Calling Close again returns the same results; after Abort it
// returns nil.
func (v *Verifier) Close() []Signature {
	v.closeMu.Lock()
	defer v.closeMu.Unlock()
	if v.result != nil {
		return v.result
	}
	if !v.state.CompareAndSwap(stateOpen, stateClosed) {
		return nil // aborted
	}
	defer v.cancel()
	v.mu.Lock()
	for _, s := range v.sigs {
		if s.body != nil {
			s.body.Sum()
		}
	}
	v.mu.Unlock()
	now := v.opts.now()
	out := make([]Signature, len(v.sigs))
	for i, s := range v.sigs {
		in := outcome{sig: s, checked: i < v.nCheck}
		if s.key != nil {
			in.keyDone = s.key.Wait(v.ctx)
		}
		out[i] = classify(in, v.max, now)
	}
	v.result = out
	return out
}

// Abort abandons the message: lookups are cancelled, a later Write
// returns ErrAborted, and Abort returns once the verifier's goroutines
// have ended (promptly, since their lookups take the cancelled context).
// It is safe to call more than once and after Close.
func (v *Verifier) Abort() {
	v.state.CompareAndSwap(stateOpen, stateAborted)
	v.cancel()
	v.keysWG.Wait()
}
