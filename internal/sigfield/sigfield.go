// Package sigfield parses the signature tags of RFC 6376 §3.5, shared by
// DKIM-Signature and by ARC-Message-Signature and ARC-Seal, which take the
// DKIM tags with their syntax and meaning (RFC 8617 §4.1.2, §4.1.3).
//
// Parse applies one set of rules to the tags both kinds of field use; which
// tags are required, and what i=, v= and cv= mean, differ between DKIM and
// ARC and are left to the caller:
//
//   - d= is a domain-name and s= a selector, parsed with domain.Parse: in
//     an internationalized message they may be U-labels (RFC 8616 §5), and
//     the key is looked up under the A-labels.
//   - b= and bh= are base64 (FWS removed) and not empty.
//   - h= is a colon-separated list of field names; empty names select no
//     field and are skipped.
//   - t= and x= are 1*12DIGIT, and x= is after t= when both are present.
//   - l= is 1*76DIGIT.
//   - c= is "header/body" with known algorithms; an unknown one is kept in
//     CanonErr, since DKIM reports it only once the key is known (§6.1).
package sigfield

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/authmilter/authmilter/domain"
	"github.com/authmilter/authmilter/internal/canon"
	"github.com/authmilter/authmilter/internal/tagvalue"
)

// ErrSyntax is wrapped by every error of Parse.
var ErrSyntax = errors.New("signature field syntax error")

// Fields are the parsed tags of a signature field.
type Fields struct {
	// Tags is the whole tag-list, for the tags the caller reads itself
	// (v=, i=, cv=).
	Tags tagvalue.List

	Algorithm string // a=, FWS removed; "" when absent

	// B and BH are b= and bh= with FWS removed; Sig and BodyHash their
	// decoded bytes. Empty when absent.
	B, BH         string
	Sig, BodyHash []byte

	// Domain is d=, Selector s=; zero when absent.
	Domain, Selector domain.Name

	// Headers is h= in order, FWS removed; HasHeaders says h= is present.
	Headers    []string
	HasHeaders bool

	// HC and BC are c= (simple/simple when absent, RFC 6376 §3.5);
	// HasCanon says c= is present; CanonErr is set when c= names an
	// unknown algorithm.
	HC, BC   canon.Canon
	HasCanon bool
	CanonErr error

	// Length is l=, -1 when absent.
	Length int64

	// Time is t= and Expiry x=, Unix seconds, when HasTime and HasExpiry.
	Time, Expiry       int64
	HasTime, HasExpiry bool

	// Query is q= with FWS removed, when HasQuery.
	Query    string
	HasQuery bool
}

// Parse parses the value of a signature field (everything after the
// colon). On error it returns what it could parse, so that a caller can
// still name d= and s= in its report.
func Parse(value string) (*Fields, error) {
	f := &Fields{Length: -1, HC: canon.Simple, BC: canon.Simple}
	tags, err := tagvalue.Parse(value)
	if err != nil {
		return f, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	f.Tags = tags
	get := func(name string) (string, bool) {
		v, ok := tags.Get(name)
		return tagvalue.StripFWS(v), ok
	}
	var first error // the first problem found, in tag order below
	bad := func(format string, args ...any) {
		if first == nil {
			first = fmt.Errorf("%w: "+format, append([]any{ErrSyntax}, args...)...)
		}
	}

	f.Algorithm, _ = get("a")
	if v, ok := tags.Get("d"); ok {
		if f.Domain, err = domain.Parse(v); err != nil {
			bad("d=: %w", err)
		}
	}
	if v, ok := tags.Get("s"); ok {
		if f.Selector, err = ParseSelector(v); err != nil {
			bad("s=: %w", err)
		}
	}
	for _, t := range []struct {
		name string
		text *string
		data *[]byte
	}{{"b", &f.B, &f.Sig}, {"bh", &f.BH, &f.BodyHash}} {
		v, ok := get(t.name)
		if !ok {
			continue
		}
		*t.text = v
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) == 0 {
			bad("%s= is not base64", t.name)
			continue
		}
		*t.data = b
	}
	if v, ok := tags.Get("h"); ok {
		f.HasHeaders = true
		for name := range strings.SplitSeq(v, ":") {
			// "h=from::to": RFC 6376 §3.5's ABNF has no empty hdr-name,
			// but deployed signers write one. It selects no field, so
			// skipping it cannot widen what the signature covers.
			if name = tagvalue.StripFWS(name); name != "" {
				f.Headers = append(f.Headers, name)
			}
		}
	}
	if v, ok := get("c"); ok {
		f.HasCanon = true
		f.HC, f.BC, f.CanonErr = canon.ParseAlgorithms(v)
	}
	if v, ok := tags.Get("l"); ok {
		// sig-l-tag = %x6c [FWS] "=" [FWS] 1*76DIGIT
		if n, ok := digits(v, 76); !ok {
			bad("l=%q is not 1 to 76 digits", v)
		} else {
			f.Length = n
		}
	}
	// sig-t-tag and sig-x-tag: 1*12DIGIT; x= "MUST be greater than" t=.
	if v, ok := tags.Get("t"); ok {
		if f.Time, f.HasTime = digits(v, 12); !f.HasTime {
			bad("t=%q is not a timestamp of 1 to 12 digits", v)
		}
	}
	if v, ok := tags.Get("x"); ok {
		if f.Expiry, f.HasExpiry = digits(v, 12); !f.HasExpiry {
			bad("x=%q is not a timestamp of 1 to 12 digits", v)
		} else if f.HasTime && f.Expiry <= f.Time {
			bad("x= is not after t=")
		}
	}
	f.Query, f.HasQuery = get("q")
	return f, first
}

// ParseSelector parses a selector, the s= tag (RFC 6376 §3.1: sub-domains,
// no trailing dot; RFC 8616 §5: U-labels allowed).
func ParseSelector(v string) (domain.Name, error) {
	if strings.HasSuffix(v, ".") {
		return domain.Name{}, fmt.Errorf("selector %q ends in a dot", v)
	}
	return domain.Parse(v)
}

// digits parses 1 to max decimal digits, nothing else (no sign, no
// space): the value of a counted DIGIT tag. Values up to 76 digits are
// accepted (l=), but only those that fit an int64 are usable.
func digits(v string, max int) (int64, bool) {
	if v == "" || len(v) > max || strings.Trim(v, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		// 19 digits or more: larger than any body or date this code will
		// see; saturate rather than refuse what the grammar allows.
		return 1<<63 - 1, true
	}
	return n, true
}
