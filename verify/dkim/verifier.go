package dkim

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"github.com/authmilter/authmilter/dnscache"
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
	// Now is the clock x= (signature expiry) is checked against; nil means
	// time.Now. go-msgauth also checks x= against the wall clock, which
	// cannot be replaced: a signature expired by either clock is permerror.
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
// body is streamed through go-msgauth's per-signature hashers and never
// held in memory. Write, Close and Abort may be called from different
// goroutines, but Write calls must not overlap one another.
type Verifier struct {
	ctx    context.Context
	cancel context.CancelFunc
	opts   *Options
	max    int

	sigs   []*sigTags // one per DKIM-Signature field, header order
	perr   []error    // parse error per field
	nCheck int        // fields handed to go-msgauth: min(len(sigs), max)

	state atomic.Int32
	pw    *io.PipeWriter // nil when there is nothing to verify

	// Written by the goroutines before they close their channel.
	done   chan struct{} // go-msgauth finished and the body is drained
	verifs []*msgauth.Verification
	verr   error
	keys   []keyResult
	keysWG sync.WaitGroup
	keysOK chan struct{}

	closeMu sync.Mutex
	result  []Signature
}

type keyResult struct {
	key *dkimkey.Key
	err error
}

// NewVerifier starts verifying a message whose header fields (raw, with
// CRLF, in order) are given. Key lookups start at once, on ctx, which also
// bounds Close; r is typically the daemon's caching resolver, so the
// second lookup of each key (for its size and flags) is answered from the
// cache. opts may be nil.
func NewVerifier(ctx context.Context, r dnscache.Resolver, header []message.Field, opts *Options) *Verifier {
	ctx, cancel := context.WithCancel(ctx)
	v := &Verifier{ctx: ctx, cancel: cancel, opts: opts, max: opts.max()}
	for _, f := range header {
		if !strings.EqualFold(f.Name, fieldName) {
			continue
		}
		st, err := parseSignature(f.Value())
		v.sigs = append(v.sigs, st)
		v.perr = append(v.perr, err)
	}
	v.nCheck = min(len(v.sigs), v.max)
	if len(v.sigs) == 0 {
		cancel()
		return v
	}

	// go-msgauth reads the header, looks the keys up, then hashes the body
	// as it arrives through the pipe. MaxVerifications makes it verify the
	// first N signatures only (RFC 6376 §6.1 allows a limit) and leaves
	// the header intact, so signatures that cover other DKIM-Signature
	// fields still verify.
	var hdr bytes.Buffer
	for _, f := range header {
		hdr.Write(f.Raw)
	}
	hdr.WriteString("\r\n")
	pr, pw := io.Pipe()
	v.pw = pw
	v.done = make(chan struct{})
	vopts := &msgauth.VerifyOptions{
		LookupTXT:        dnscache.TXTFunc(ctx, r),
		MaxVerifications: v.max,
	}
	go func() {
		defer close(v.done)
		v.verifs, v.verr = msgauth.VerifyWithOptions(io.MultiReader(&hdr, pr), vopts)
		// go-msgauth may stop reading early (a key error with a single
		// signature); keep consuming so that Write never blocks. The
		// pipe is never closed with an error: go-msgauth's parallel path
		// leaks its goroutines on a read error.
		io.Copy(io.Discard, pr)
	}()

	// Our own lookup of each key, for its size and t= flags, which
	// go-msgauth does not report (RFC 6376 §3.6.1).
	v.keys = make([]keyResult, v.nCheck)
	v.keysOK = make(chan struct{})
	for i := 0; i < v.nCheck; i++ {
		if v.perr[i] != nil {
			continue
		}
		v.keysWG.Add(1)
		go func(i int, st *sigTags) {
			defer v.keysWG.Done()
			k, err := dkimkey.Lookup(ctx, r, st.selector, st.domain)
			v.keys[i] = keyResult{k, err}
		}(i, v.sigs[i])
	}
	go func() {
		v.keysWG.Wait()
		close(v.keysOK)
	}()
	return v
}

// Write passes body bytes (CRLF line ends, any chunking) to the hashers. It
// returns ErrAborted after Abort and ErrClosed after Close. It waits while
// the hashers catch up, which bounded work and the context keep short.
func (v *Verifier) Write(body []byte) (int, error) {
	switch v.state.Load() {
	case stateAborted:
		return 0, ErrAborted
	case stateClosed:
		return 0, ErrClosed
	}
	if v.pw == nil {
		return len(body), nil
	}
	n, err := v.pw.Write(body)
	if err != nil {
		if v.state.Load() == stateAborted {
			return n, ErrAborted
		}
		return n, ErrClosed
	}
	return n, nil
}

// Close ends the body and returns one Signature per DKIM-Signature field,
// in header order (an empty slice when there is none). It does not wait
// past the context's end: signatures not verified by then are temperror.
// Calling Close again returns the same results; after Abort it returns nil.
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
	if v.pw == nil {
		v.result = []Signature{}
		return v.result
	}
	v.pw.Close()
	finished, keysFinished := waitDone(v.ctx, v.done), waitDone(v.ctx, v.keysOK)
	now := v.opts.now()
	out := make([]Signature, len(v.sigs))
	for i, st := range v.sigs {
		var in outcome
		in.parseErr = v.perr[i]
		in.checked = i < v.nCheck
		if in.checked && finished {
			if i < len(v.verifs) && v.verifs[i] != nil {
				in.verified = true
				in.err = v.verifs[i].Err
			} else {
				in.runErr = v.verr
			}
		}
		if in.checked && keysFinished {
			in.key = v.keys[i]
		}
		out[i] = classify(st, in, v.max, now)
	}
	v.result = out
	return out
}

// waitDone waits for ch to be closed or ctx to end, and reports whether ch
// was closed.
func waitDone(ctx context.Context, ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
}

// Abort abandons the message: lookups are cancelled, a pending or later
// Write returns ErrAborted, and Abort returns once the verifier's
// goroutines have ended (promptly, since their lookups take the cancelled
// context). It is safe to call more than once and after Close.
func (v *Verifier) Abort() {
	v.state.CompareAndSwap(stateOpen, stateAborted)
	v.cancel()
	if v.pw == nil {
		return
	}
	// A clean EOF, not an error: go-msgauth finishes on the truncated
	// body and its result is discarded.
	v.pw.Close()
	<-v.done
	<-v.keysOK
}
