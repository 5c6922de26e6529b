package dmarc

import (
	"context"

	"github.com/authmilter/authmilter/dnscache"
)

// TreeWalk finds Organizational Domains and policy with the DNS Tree Walk of
// RFC 9989 §4.10: at most eight _dmarc queries from the start domain towards
// the root, stopping at a record with psd=y or psd=n.
type TreeWalk struct{}

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

// walk performs RFC 9989 §4.10 steps 1–7 from start.
func (TreeWalk) walk(ctx context.Context, r dnscache.Resolver, start string) (walk, error) {
	w := walk{start: start}
	// query performs steps 1–2 (and 5–6) at one name and reports whether
	// the walk stops there.
	query := func(name string) (bool, error) {
		rec, n, err := lookupRecord(ctx, r, name)
		if err != nil {
			return false, err
		}
		if n > 1 {
			// "If multiple DMARC Policy Records are returned for a single
			// target, they are all discarded."
			w.discarded = append(w.discarded, name)
			return false, nil
		}
		if rec == nil {
			return false, nil
		}
		w.found = append(w.found, walkRecord{name, rec})
		// "If a single record remains and it contains a psd=n or psd=y
		// tag, stop."
		return rec.PSD == PSDYes || rec.PSD == PSDNo, nil
	}

	stop, err := query(start) // step 1
	if err != nil || stop {
		return w, err
	}
	// Steps 3–4: x < 8 drops one label; x >= 8 drops labels until 7 remain.
	x := labelCount(start)
	next := x - 1
	if x >= maxWalkLabels {
		next = maxWalkLabels - 1
	}
	// Steps 5–7: query, then drop one label, until none remain.
	for n := next; n >= 1; n-- {
		stop, err := query(lastLabels(start, n))
		if err != nil || stop {
			return w, err
		}
	}
	return w, nil
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
func (TreeWalk) String() string { return "treewalk" }
