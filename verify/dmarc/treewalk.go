package dmarc

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/authmilter/authmilter/dnscache"
)

// TreeWalk finds Organizational Domains and policy with the DNS Tree Walk of
// RFC 9989 §4.10: at most eight _dmarc queries from the start domain towards
// the root, stopping at a record with psd=y or psd=n.
//
// The names a walk may query follow from the start domain's labels alone,
// so they are asked at once, and the walk decides from the answers in walk
// order exactly as if it had asked them one by one: the records it uses,
// where it stops, and the error it returns are the same. A walk that stops
// early (a psd= record, a failure) has then asked some names it did not
// need, never more than the eight of §4.10 and never more than a walk from
// the same domain that does not stop early: the cost of taking the walk's
// round trips off the wait after end of message. Lookups still running
// when the walk has decided are cancelled (a dnscache.Cache finishes them
// in the background and keeps the answers). When the resolver has every
// answer in memory (dnscache.FromMemory), or ctx is a probe context, the
// walk is made one name at a time on the caller's goroutine.
type TreeWalk struct {
	// Sequential asks one name at a time and stops asking where the walk
	// stops, as §4.10 describes it: fewer queries when the walk stops
	// early, one round trip per name.
	Sequential bool
}

// maxWalkLabels is the label count from which the walk jumps (RFC 9989
// §4.10 step 4): a name of 8 or more labels is shortened to 7 after the
// first query, so no walk makes more than 8 queries.
const maxWalkLabels = 8

// walkRecord is a single DMARC record found during a walk.
type walkRecord struct {
	domain string
	rec    *Record
}

// walk is the outcome of one DNS Tree Walk.
type walk struct {
	start     string
	found     []walkRecord // in query order: longest name first
	discarded []string
}

// walkNames returns the names a walk from start queries when it does not
// stop early, in walk order (RFC 9989 §4.10 steps 1, 3–7): start; then, for
// a name of x labels, x-1 labels (or 7 when x >= 8); then one label fewer
// each time, down to the top-level domain.
// The names are appended to dst.
func walkNames(dst []string, start string) []string {
	x := labelCount(start)
	next := x - 1
	if x >= maxWalkLabels {
		next = maxWalkLabels - 1
	}
	names := append(dst, start)
	for n := next; n >= 1; n-- {
		names = append(names, lastLabels(start, n))
	}
	return names
}

// answerFunc returns the lookupRecord answer for the i-th name of a walk;
// it is called with i = 0, 1, ... in order.
type answerFunc func(i int) (*Record, int, error)

// decide performs RFC 9989 §4.10 steps 1–7 over the answers for names, in
// walk order.
func decide(start string, names []string, answer answerFunc) (walk, error) {
	w := walk{start: start}
	for i, name := range names {
		rec, n, err := answer(i)
		if err != nil {
			return w, err
		}
		if n > 1 {
			// "If multiple DMARC Policy Records are returned for a single
			// target, they are all discarded."
			w.discarded = append(w.discarded, name)
			continue
		}
		if rec == nil {
			continue
		}
		w.found = append(w.found, walkRecord{name, rec})
		// "If a single record remains and it contains a psd=n or psd=y
		// tag, stop."
		if rec.PSD == PSDYes || rec.PSD == PSDNo {
			return w, nil
		}
	}
	return w, nil
}

// walk performs the tree walk from start (see TreeWalk).
func (t TreeWalk) walk(ctx context.Context, r dnscache.Resolver, start string) (walk, error) {
	var buf [maxWalkLabels]string // no allocation on the sequential paths
	names := walkNames(buf[:0], start)
	sequential := func(ctx context.Context) (walk, error) {
		return decide(start, names, func(i int) (*Record, int, error) { return lookupRecord(ctx, r, names[i]) })
	}
	if t.Sequential || len(names) == 1 || dnscache.IsCacheOnly(ctx) {
		return sequential(ctx)
	}
	var w walk
	var err error
	if dnscache.FromMemory(ctx, r, func(pctx context.Context) { w, err = sequential(pctx) }) {
		return w, err
	}
	return concurrentWalk(ctx, r, start, slices.Clone(names))
}

// concurrentWalk asks every name of the walk at once (the first on the
// caller's goroutine) and decides from the answers in walk order. It
// returns only when every lookup it started has returned.
func concurrentWalk(ctx context.Context, r dnscache.Resolver, start string, names []string) (walk, error) {
	type answer struct {
		rec  *Record
		n    int
		err  error
		done chan struct{}
	}
	qctx, cancel := context.WithCancel(ctx)
	answers := make([]answer, len(names))
	var wg sync.WaitGroup
	// Within one evaluation, a name an earlier walk asked ahead and then
	// gave up (it stopped before needing it) is asked only when reached:
	// the walks of one evaluation stop at the same psd= records, so it is
	// rarely needed, and asking it ahead again would repeat the query.
	m, _ := r.(*memoResolver)
	for i := 1; i < len(names); i++ {
		a := &answers[i]
		if m != nil && m.wasDropped("_dmarc."+names[i]) {
			continue
		}
		a.done = make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := qctx.Err(); err != nil {
				// Decided (or given up) before this started: no query, and
				// an error, never "no record", should it still be read.
				a.err = fmt.Errorf("%w: TXT _dmarc.%s: %w", ErrDNS, names[i], dnscache.NewError(dnscache.ErrTemporary, "_dmarc."+names[i], "", err.Error(), false))
			} else {
				a.rec, a.n, a.err = lookupRecord(qctx, r, names[i])
			}
			close(a.done)
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	return decide(start, names, func(i int) (*Record, int, error) {
		a := &answers[i]
		if a.done == nil {
			return lookupRecord(qctx, r, names[i])
		}
		<-a.done // every lookup honours qctx: bounded by its deadline
		return a.rec, a.n, a.err
	})
}

// orgDomain selects the Organizational Domain from a walk (RFC 9989
// §4.10.2), looking at the records from the longest name to the shortest:
//  1. a record with psd=n: its domain;
//  2. a record with psd=y, other than at the start: the domain one label
//     below it (towards the start domain);
//  3. otherwise the record at the name with the fewest labels.
//
// With no record at all, the start domain is its own Organizational Domain.
func (w walk) orgDomain() string {
	for _, f := range w.found {
		switch {
		case f.rec.PSD == PSDNo:
			return f.domain
		case f.rec.PSD == PSDYes && f.domain != w.start:
			return lastLabels(w.start, labelCount(f.domain)+1)
		}
	}
	if len(w.found) == 0 {
		return w.start
	}
	return w.found[len(w.found)-1].domain
}

// recordAt returns the record the walk found at domain, or nil.
func (w walk) recordAt(domain string) *Record {
	for _, f := range w.found {
		if f.domain == domain {
			return f.rec
		}
	}
	return nil
}

// OrgDomain implements OrgDomainFinder with a tree walk from domain.
func (t TreeWalk) OrgDomain(ctx context.Context, r dnscache.Resolver, domain string) (string, error) {
	w, err := t.walk(ctx, r, domain)
	if err != nil {
		return "", err
	}
	return w.orgDomain(), nil
}

// Discover implements OrgDomainFinder with RFC 9989 §4.10.1. One walk from
// the Author Domain serves both purposes: its first query is the Author
// Domain's own record, the rest is the walk §4.10.1 starts at the parent
// (or at the 7-label name for longer Author Domains), and the same records
// select the Organizational Domain (§4.10.2). The record that applies is,
// in order of preference, the Author Domain's, the Organizational Domain's,
// or the Public Suffix Domain's (the psd=y record the walk stopped at).
func (t TreeWalk) Discover(ctx context.Context, r dnscache.Resolver, author string) (Discovery, error) {
	w, err := t.walk(ctx, r, author)
	d := Discovery{OrgDomain: author, Discarded: w.discarded}
	if err != nil {
		return d, err
	}
	d.OrgDomain = w.orgDomain()
	if rec := w.recordAt(author); rec != nil {
		d.Record, d.PolicyDomain = rec, author
		return d, nil
	}
	if rec := w.recordAt(d.OrgDomain); rec != nil {
		d.Record, d.PolicyDomain = rec, d.OrgDomain
		return d, nil
	}
	if n := len(w.found); n > 0 && w.found[n-1].rec.PSD == PSDYes {
		d.Record, d.PolicyDomain = w.found[n-1].rec, w.found[n-1].domain
	}
	return d, nil
}

// String names the method for logs.
func (t TreeWalk) String() string {
	if t.Sequential {
		return "treewalk (sequential)"
	}
	return "treewalk"
}
