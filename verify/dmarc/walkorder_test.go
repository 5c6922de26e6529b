package dmarc

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/domain"
	"github.com/authmilter/authmilter/verify"
)

// The concurrent tree walk (issue #19) must decide exactly as the
// sequential walk of RFC 9989 §4.10 does. These tests compare the two.

// abandonRecorder wraps a resolver and notes the TXT lookups whose caller
// had given up by the time they returned (a concurrent walk that decided
// without them). A dnscache.Cache finishes such a lookup once for every
// caller, so only the others count as separate queries.
type abandonRecorder struct {
	dnscache.Resolver
	mu        sync.Mutex
	abandoned []string
}

func (a *abandonRecorder) LookupTXT(ctx context.Context, name string) ([]string, dnscache.AnswerInfo, error) {
	txts, res, err := a.Resolver.LookupTXT(ctx, name)
	if ctx.Err() != nil {
		a.mu.Lock()
		a.abandoned = append(a.abandoned, "TXT "+name)
		a.mu.Unlock()
	}
	return txts, res, err
}

// checkConcurrentLog checks the query log of a concurrent walk or
// evaluation (got, with the lookups abandoned) against that of the
// sequential one (want): the same queries other than TXT, in the same
// order; every TXT name of want; no name answered twice; any other TXT
// name is the _dmarc name of a parent of a name the sequential walks
// asked, one the walk from there may ask when it does not stop early.
func checkConcurrentLog(t *testing.T, got, abandoned, want []string) {
	t.Helper()
	for _, q := range abandoned {
		if i := slices.Index(got, q); i >= 0 {
			got = slices.Delete(slices.Clone(got), i, i+1)
		}
	}
	other := func(log []string) []string {
		var out []string
		for _, q := range log {
			if !strings.HasPrefix(q, "TXT ") {
				out = append(out, q)
			}
		}
		return out
	}
	if g, w := other(got), other(want); !slices.Equal(g, w) {
		t.Errorf("queries other than TXT\n got %q\nwant %q", g, w)
	}
	seen := map[string]bool{}
	for _, q := range got {
		if seen[q] {
			t.Errorf("%s asked twice: %q", q, got)
		}
		seen[q] = true
	}
	for _, q := range want {
		if strings.HasPrefix(q, "TXT ") && !seen[q] {
			t.Errorf("%s not asked: got %q, want at least %q", q, got, want)
		}
	}
	for q := range seen {
		name, ok := strings.CutPrefix(q, "TXT _dmarc.")
		if !ok || slices.Contains(want, q) {
			continue
		}
		under := false
		for _, w := range want {
			if d, ok := strings.CutPrefix(w, "TXT _dmarc."); ok && d != name && domain.IsSameOrUnder(d, name) {
				under = true
			}
		}
		if !under {
			t.Errorf("%s asked: no sequential walk could ask it (sequential %q)", q, want)
		}
	}
}

// sameResult compares what a caller of Evaluate sees.
func sameResult(a, b Result) bool {
	if a.Status != b.Status || a.Reason != b.Reason || a.Disposition != b.Disposition || a.OrgDomain != b.OrgDomain ||
		a.PolicyDomain != b.PolicyDomain || a.Applied != b.Applied || a.Policy != b.Policy || a.SkippedWalks != b.SkippedWalks ||
		(a.Err == nil) != (b.Err == nil) || errors.Is(a.Err, ErrDNS) != errors.Is(b.Err, ErrDNS) || len(a.DKIM) != len(b.DKIM) {
		return false
	}
	same := func(x, y Identifier) bool {
		return x.Alignment == y.Alignment && x.OrgDomain == y.OrgDomain && (x.Err == nil) == (y.Err == nil)
	}
	if (a.SPF == nil) != (b.SPF == nil) || a.SPF != nil && !same(*a.SPF, *b.SPF) {
		return false
	}
	for i := range a.DKIM {
		if !same(a.DKIM[i], b.DKIM[i]) {
			return false
		}
	}
	return true
}

// TestConcurrentWalkDecidesAsSequential: over random worlds with
// temporary failures at random names, Evaluate with the concurrent walk
// gives the result of the sequential walk, asking no name the sequential
// walks' worst case would not.
func TestConcurrentWalkDecidesAsSequential(t *testing.T) {
	t.Parallel()
	n := uint64(2000)
	if testing.Short() {
		n = 200
	}
	for seed := range n {
		rng := rand.New(rand.NewPCG(seed, 19))
		w := newRandomWorld(rng)
		fail := map[string]dnstest.Failure{}
		for _, name := range w.names {
			switch rng.IntN(12) {
			case 0:
				fail["_dmarc."+name] = dnstest.ServFail
			case 1:
				fail[name+"/A"] = dnstest.Timeout
			}
		}
		seqR := &dnstest.Resolver{TXT: w.txt, A: w.a, Fail: fail}
		conD := &dnstest.Resolver{TXT: w.txt, A: w.a, Fail: fail}
		conR := &abandonRecorder{Resolver: conD}
		seq := Evaluate(context.Background(), seqR, w.args, &Options{Finder: TreeWalk{Sequential: true}, Rand: func(int) int { return 0 }})
		con := Evaluate(context.Background(), conR, w.args, &Options{Rand: func(int) int { return 0 }})
		if !sameResult(seq, con) {
			t.Fatalf("seed %d: author %s, SPF %+v, DKIM %+v, records %q, failures %v:\nsequential %s/%s (%s)\nconcurrent %s/%s (%s)",
				seed, w.author, w.args.SPF, w.args.DKIM, w.txt, fail, seq.Status, seq.Disposition, seq.Reason, con.Status, con.Disposition, con.Reason)
		}
		checkConcurrentLog(t, conD.Queries(), conR.abandoned, seqR.Queries())
		if t.Failed() {
			t.Fatalf("seed %d", seed)
		}
	}
}

// barrierResolver holds every TXT lookup until want of them are waiting at
// once, then answers them all from the embedded resolver: a walk that asked
// one name at a time would never get an answer.
type barrierResolver struct {
	*dnstest.Resolver
	only    map[string]bool // the names held (nil: every name)
	want    int
	mu      sync.Mutex
	waiting int
	release chan struct{}
}

func (b *barrierResolver) LookupTXT(ctx context.Context, name string) ([]string, dnscache.AnswerInfo, error) {
	if b.only != nil && !b.only[name] {
		return b.Resolver.LookupTXT(ctx, name)
	}
	b.mu.Lock()
	b.waiting++
	if b.waiting == b.want {
		close(b.release)
	}
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, dnscache.AnswerInfo{}, dnscache.NewError(dnscache.ErrTemporary, name, "", ctx.Err().Error(), false)
	}
	return b.Resolver.LookupTXT(ctx, name)
}

// TestWalkAsksAtOnce: the five names of a walk from a five-label domain are
// all in flight together, in one round trip.
func TestWalkAsksAtOnce(t *testing.T) {
	t.Parallel()
	r := &barrierResolver{
		Resolver: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject"}}},
		want:     5, release: make(chan struct{}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := TreeWalk{}.Discover(ctx, r, "a.b.mail.example.com")
	if err != nil {
		t.Fatalf("the walk asked one name at a time: %v", err)
	}
	if d.OrgDomain != "example.com" || d.PolicyDomain != "example.com" {
		t.Errorf("org %s policy %s, want example.com", d.OrgDomain, d.PolicyDomain)
	}
}

// TestIdentifierWalksAtOnce: the walks from an SPF and a DKIM identifier
// under the Author Domain's Organizational Domain are in flight together.
func TestIdentifierWalksAtOnce(t *testing.T) {
	t.Parallel()
	r := &barrierResolver{
		Resolver: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.victim.example": {"v=DMARC1; p=reject"}}},
		only:     map[string]bool{"_dmarc.bounce.victim.example": true, "_dmarc.mail.victim.example": true},
		want:     2, release: make(chan struct{}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := Evaluate(ctx, r, Args{From: from("a@victim.example"), SPF: pass("bounce.victim.example"),
		DKIM: []DKIM{dkimPass("mail.victim.example")}}, &Options{Rand: noRand(t)})
	if res.Status != verify.StatusPass || res.SPF.Alignment != AlignedRelaxed || res.DKIM[0].Alignment != AlignedRelaxed {
		t.Fatalf("%s (%s), SPF %q DKIM %q: the identifier walks were made one after the other", res.Status, res.Reason, res.SPF.Alignment, res.DKIM[0].Alignment)
	}
}

// blockingResolver holds every lookup of a name not in answer until its
// context ends; the names in answer are answered once held lookups are
// waiting, so that the test sees them cancelled in flight.
type blockingResolver struct {
	*dnstest.Resolver
	answer  map[string]bool
	hold    int           // lookups to wait for before answering
	started chan struct{} // one send per held lookup
}

func (b *blockingResolver) LookupTXT(ctx context.Context, name string) ([]string, dnscache.AnswerInfo, error) {
	if b.answer[name] {
		for range b.hold {
			select {
			case <-b.started:
			case <-ctx.Done():
			}
		}
		return b.Resolver.LookupTXT(ctx, name)
	}
	b.started <- struct{}{}
	<-ctx.Done()
	return nil, dnscache.AnswerInfo{}, dnscache.NewError(dnscache.ErrTemporary, name, "", ctx.Err().Error(), false)
}

// TestWalkCancelsWhatItDoesNotNeed: a walk that stops at its first name
// (psd=y) while the lookups of the names above are in flight returns
// without waiting for their answers: it cancels them, and returns once
// they have returned (no goroutine outlives the walk).
func TestWalkCancelsWhatItDoesNotNeed(t *testing.T) {
	t.Parallel()
	r := &blockingResolver{
		Resolver: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.bank.example.com": {"v=DMARC1; p=reject; psd=y"}}},
		answer:   map[string]bool{"_dmarc.bank.example.com": true},
		hold:     2, // _dmarc.example.com, _dmarc.com
		started:  make(chan struct{}, 2),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := TreeWalk{}.Discover(ctx, r, "bank.example.com")
	if err != nil || d.PolicyDomain != "bank.example.com" {
		t.Fatalf("policy domain %q, %v", d.PolicyDomain, err)
	}
	if ctx.Err() != nil {
		t.Fatal("the walk waited for lookups it did not need")
	}
}

// TestPrefetch: the discovery of the MAIL FROM domain asks exactly what
// Evaluate asks for an Author Domain under it and its SPF identifier, so a
// cache in front of r answers Evaluate from memory.
func TestPrefetch(t *testing.T) {
	t.Parallel()
	r := &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject"}}}
	if err := Prefetch(context.Background(), r, "Mail.Example.COM.", nil); err != nil {
		t.Fatal(err)
	}
	pre := r.Queries()
	r.ResetQueries()
	res := Evaluate(context.Background(), r, Args{From: from("a@example.com"), SPF: pass("mail.example.com")}, &Options{Rand: noRand(t)})
	if res.Status != verify.StatusPass {
		t.Fatalf("%s (%s)", res.Status, res.Reason)
	}
	for _, q := range r.Queries() {
		if !slices.Contains(pre, q) {
			t.Errorf("Evaluate asked %s, which Prefetch did not (Prefetch: %q)", q, pre)
		}
	}
	if err := Prefetch(context.Background(), r, "[192.0.2.1]", nil); !errors.Is(err, ErrAuthorDomain) {
		t.Errorf("address literal: %v", err)
	}
}

// cancelAfterFirst answers the first TXT lookup, then cancels the walk's
// context before answering any other, as a message timeout would.
type cancelAfterFirst struct {
	*dnstest.Resolver
	cancel context.CancelFunc
	first  string
}

func (c *cancelAfterFirst) LookupTXT(ctx context.Context, name string) ([]string, dnscache.AnswerInfo, error) {
	if name == c.first {
		txts, res, err := c.Resolver.LookupTXT(ctx, name)
		c.cancel()
		return txts, res, err
	}
	<-ctx.Done()
	return nil, dnscache.AnswerInfo{}, dnscache.NewError(dnscache.ErrTemporary, name, "", ctx.Err().Error(), false)
}

// TestWalkGivenUpIsAnError: a walk whose context ends after its first
// answer returns a temporary failure, never a walk that found nothing
// above the first name.
func TestWalkGivenUpIsAnError(t *testing.T) {
	t.Parallel()
	for range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		r := &cancelAfterFirst{
			Resolver: &dnstest.Resolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject"}}},
			cancel:   cancel, first: "_dmarc.mail.example.com",
		}
		d, err := TreeWalk{}.Discover(ctx, r, "mail.example.com")
		cancel()
		if !errors.Is(err, ErrDNS) || !errors.Is(err, dnscache.ErrTemporary) {
			t.Fatalf("Discover after the context ended: %+v, %v; want a temporary failure", d, err)
		}
	}
}
