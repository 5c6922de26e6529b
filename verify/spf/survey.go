package spf

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/authmilter/authmilter/dnscache"
)

// This file surveys a domain's SPF record tree without a client address:
// every term that evaluation could reach, for an audit of the record
// rather than a verdict on one message.

// Survey is what a domain's SPF record and the records it includes or
// redirects to publish, counted as check_host() would count them if no
// mechanism matched before the end (the worst case, RFC 7208 §4.6.4).
type Survey struct {
	// Domain is the domain surveyed; Record its SPF record as published.
	Domain string
	Record string
	// Lookups counts the DNS-querying terms (include, a, mx, ptr, exists,
	// redirect) of the whole tree (§4.6.4: at most 10). LookupTerms lists
	// them as "domain: term".
	Lookups     int
	LookupTerms []string
	// VoidLookups counts the terms with a literal target whose query is
	// answered NXDOMAIN or NODATA (§4.6.4: at most 2); VoidTerms lists
	// them. Terms with macros depend on the message and are not queried.
	VoidLookups int
	VoidTerms   []string
	// MacroTerms lists the DNS-querying terms whose target has macros.
	MacroTerms []string
	// PTR lists the ptr mechanisms of the tree as "domain: term" (§5.5:
	// "ptr" SHOULD NOT be published).
	PTR []string
	// All is the "all" mechanism that ends evaluation of the top record,
	// with its qualifier as written ("-all", "~all", "all"), following
	// redirect= when the record has none; AllDomain is the domain whose
	// record holds it. Both are empty when no record in the chain has one.
	All, AllDomain string
	// Problems are the errors found below the top record (an include
	// target without a record, a syntax error in an included record, a
	// temporary DNS failure), each wrapping one of the package's sentinel
	// errors or, for DNS failures, ErrDNS.
	Problems []error
}

// SyntaxError is a record syntax error with where it is.
type SyntaxError struct {
	Record string // the record text
	Term   string // the term at fault, "" when the record as a whole is
	Offset int    // byte offset of Term in Record
	Err    error  // wraps ErrSyntax
}

func (e *SyntaxError) Error() string {
	if e.Term == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("at column %d (%q): %v", e.Offset+1, e.Term, e.Err)
}

func (e *SyntaxError) Unwrap() error { return e.Err }

// SurveyDomain fetches the SPF record of domain and walks every include and
// redirect below it. The error is about the top record only: ErrNoRecord
// (none, or NXDOMAIN), ErrMultipleRecords, a *SyntaxError (ErrSyntax), or
// ErrDNS for a temporary failure; problems further down are in
// Survey.Problems.
func SurveyDomain(ctx context.Context, r dnscache.Resolver, domain string) (*Survey, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	s := &Survey{Domain: domain}
	w := &surveyor{ctx: ctx, r: r, s: s, path: map[string]bool{}, records: map[string]fetched{}}
	txt, rec, err := w.fetch(domain)
	if err != nil {
		return s, err
	}
	s.Record = txt
	w.path[domain] = true
	w.walk(domain, rec, 0, true)
	return s, nil
}

type surveyor struct {
	ctx     context.Context
	r       dnscache.Resolver
	s       *Survey
	path    map[string]bool    // the domains from the top to the record walked (loops)
	records map[string]fetched // records fetched, by domain
	stopped bool               // the walk stopped at maxSurveyLookups
}

// fetched is the outcome of one fetch.
type fetched struct {
	rec *record
	err error
}

// maxSurveyLookups stops a walk that has counted this many DNS-querying
// terms: far over the limit, and a record tree that includes the same
// records many times over would otherwise be walked exponentially often.
const maxSurveyLookups = 100

// fetch looks up and parses the SPF record at domain (§4.4, §4.5).
func (w *surveyor) fetch(domain string) (string, *record, error) {
	txts, _, err := w.r.LookupTXT(w.ctx, domain)
	if err != nil {
		if isVoid(err) {
			return "", nil, fmt.Errorf("%w at %s: %w", ErrNoRecord, domain, err)
		}
		return "", nil, fmt.Errorf("%w: TXT %s: %w", ErrDNS, domain, err)
	}
	var found []string
	for _, t := range txts {
		if isSPFRecord(t) {
			found = append(found, t)
		}
	}
	switch {
	case len(found) == 0:
		return "", nil, fmt.Errorf("%w at %s", ErrNoRecord, domain)
	case len(found) > 1:
		return "", nil, fmt.Errorf("%w at %s (%d): %q", ErrMultipleRecords, domain, len(found), found)
	}
	rec, err := parseRecord(found[0])
	if err != nil {
		return found[0], nil, fmt.Errorf("record at %s: %w", domain, locateSyntaxError(found[0], err))
	}
	return found[0], rec, nil
}

// locateSyntaxError finds the first term of txt that does not parse alone,
// to say where err is.
func locateSyntaxError(txt string, err error) *SyntaxError {
	off := len("v=spf1")
	for off < len(txt) {
		if txt[off] == ' ' {
			off++
			continue
		}
		end := strings.IndexByte(txt[off:], ' ')
		if end < 0 {
			end = len(txt) - off
		}
		term := txt[off : off+end]
		if termErr := (&record{}).parseTerm(term); termErr != nil {
			return &SyntaxError{Record: txt, Term: term, Offset: off, Err: termErr}
		}
		off += end
	}
	return &SyntaxError{Record: txt, Err: err}
}

// walk counts the terms of rec at domain and descends into includes and
// the redirect. top is true along the chain of redirects from the surveyed
// domain, where the "all" that ends evaluation is looked for.
func (w *surveyor) walk(domain string, rec *record, depth int, top bool) {
	if depth > maxDepth {
		w.problem(fmt.Errorf("%w: nested more than %d deep at %s", ErrTooManyLookups, maxDepth, domain))
		return
	}
	hasAll := false
	for i := range rec.directives {
		d := &rec.directives[i]
		if d.kind == mechAll {
			hasAll = true
			if top && w.s.All == "" {
				w.s.All, w.s.AllDomain = d.text, domain
			}
			continue
		}
		if d.kind == mechIP4 || d.kind == mechIP6 {
			continue
		}
		w.s.Lookups++ // §4.6.4
		w.s.LookupTerms = append(w.s.LookupTerms, domain+": "+d.text)
		if d.kind == mechPTR {
			w.s.PTR = append(w.s.PTR, domain+": "+d.text)
			continue
		}
		name, literal := w.target(d.domain, domain)
		if !literal {
			w.s.MacroTerms = append(w.s.MacroTerms, domain+": "+d.text)
			continue
		}
		switch d.kind {
		case mechInclude:
			w.descend(domain, d.text, name, depth, false, ErrIncludeNone)
		case mechA:
			w.void(domain, d.text, name, func() error { return w.lookupAddrs(name) })
		case mechMX:
			w.void(domain, d.text, name, func() error { _, _, err := w.r.LookupMX(w.ctx, name); return err })
		case mechExists:
			w.void(domain, d.text, name, func() error { _, _, err := w.r.LookupA(w.ctx, name); return err })
		}
	}
	// §6.1: redirect is used only when no mechanism matched, and never
	// after "all".
	if rec.redirect != nil && !hasAll {
		w.s.Lookups++
		w.s.LookupTerms = append(w.s.LookupTerms, domain+": "+rec.redirect.text)
		name, literal := w.target(rec.redirect.domain, domain)
		if !literal {
			w.s.MacroTerms = append(w.s.MacroTerms, domain+": "+rec.redirect.text)
			return
		}
		w.descend(domain, rec.redirect.text, name, depth, top, ErrRedirectNone)
	}
}

// descend surveys the record at name, the target of term at domain.
func (w *surveyor) descend(domain, term, name string, depth int, top bool, none error) {
	if w.path[name] {
		// A loop: evaluation recurses until the lookup limit (§4.6.4).
		w.problem(fmt.Errorf("%w: %s: %s leads back to %s, a loop", ErrTooManyLookups, domain, term, name))
		return
	}
	if w.s.Lookups > maxSurveyLookups {
		if !w.stopped {
			w.stopped = true
			w.problem(fmt.Errorf("%w: stopped counting after %d", ErrTooManyLookups, maxSurveyLookups))
		}
		return
	}
	f, ok := w.records[name]
	if !ok {
		_, f.rec, f.err = w.fetch(name)
		w.records[name] = f
	}
	rec, err := f.rec, f.err
	switch {
	case errors.Is(err, ErrNoRecord):
		// §5.2, §6.1: a target without a record is a permerror.
		w.problem(fmt.Errorf("%s: %s: %w: %w", domain, term, none, err))
		return
	case err != nil:
		w.problem(fmt.Errorf("%s: %s: %w", domain, term, err))
		return
	}
	// A record included twice is evaluated, and counted, twice.
	w.path[name] = true
	w.walk(name, rec, depth+1, top)
	delete(w.path, name)
}

// void makes the query of a term and counts it when it is void.
func (w *surveyor) void(domain, term, name string, query func() error) {
	err := query()
	switch {
	case err == nil:
	case isVoid(err):
		w.s.VoidLookups++
		w.s.VoidTerms = append(w.s.VoidTerms, domain+": "+term)
	default:
		w.problem(fmt.Errorf("%w: %s: %s: %w", ErrDNS, domain, term, err))
	}
}

// lookupAddrs is void when name has neither A nor AAAA records: a sender
// of either family would get the void answer (§5.3).
func (w *surveyor) lookupAddrs(name string) error {
	_, _, err := w.r.LookupA(w.ctx, name)
	if err == nil || !isVoid(err) {
		return err
	}
	_, _, err6 := w.r.LookupAAAA(w.ctx, name)
	if err6 == nil || !isVoid(err6) {
		return err6
	}
	return err
}

// target returns the literal target of a term, or false when it has
// macros. A literal that is no usable name is reported as itself.
func (w *surveyor) target(ms macroString, domain string) (string, bool) {
	if ms == nil {
		return domain, true
	}
	s, ok := ms.isLiteral()
	if !ok {
		return "", false
	}
	if name, ok := targetName(s); ok {
		return strings.ToLower(name), true
	}
	return s, true
}

func (w *surveyor) problem(err error) {
	w.s.Problems = append(w.s.Problems, err)
}
