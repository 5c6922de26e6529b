package dkim

import (
	"fmt"
	"strings"
	"time"

	"github.com/authmilter/authmilter/domain"
	"github.com/authmilter/authmilter/internal/canon"
	"github.com/authmilter/authmilter/internal/sigfield"
	"github.com/authmilter/authmilter/internal/tagvalue"
	"github.com/authmilter/authmilter/verify"
)

// Signature is the outcome of one DKIM-Signature header field, with the
// facts an Authentication-Results header (RFC 8601 §2.7.1, RFC 6008) or a
// log line needs.
type Signature struct {
	Status     verify.Status
	Domain     string // d= (SDID), FWS removed; in A-labels when it has U-labels or A-labels (RFC 8616 §5)
	Identifier string // i= (AUID) as given, FWS removed, its domain in A-labels like d=; empty when absent
	Selector   string // s=, FWS removed, in A-labels like d=
	Algorithm  string // a=, e.g. "rsa-sha256"
	B          string // full b= value, FWS removed (RFC 6008 picks a prefix)
	KeyBits    int    // RSA modulus length, 256 for Ed25519; 0 when unknown
	KeyTesting bool   // key record t=y: the domain is testing DKIM
	KeyStrict  bool   // key record t=s: i= must be in d= itself
	Reason     string // short, for logs and A-R comments ("body hash mismatch", ...)
	Err        error  // nil on pass
}

// fieldName is the header field this package verifies (RFC 6376 §3.5).
const fieldName = "DKIM-Signature"

// sigTags is a parsed DKIM-Signature (RFC 6376 §3.5).
type sigTags struct {
	domain, identifier, selector, algorithm, b string
	name                                       domain.Name // d=, parsed
	idName                                     domain.Name // domain of i=, d= without i=; set by checkSignature
	hasLength                                  bool
	hasExpiry                                  bool
	expiry                                     int64 // x=, Unix seconds

	bh            string   // bh=, FWS removed, still base64
	sig, bodyHash []byte   // b= and bh= decoded
	headers       []string // h=, in order, FWS removed
	query         string   // q=, FWS removed; "" when absent
	hasQuery      bool
	hc, bc        canon.Canon // c=; simple/simple when absent
	canonErr      error       // c= names an algorithm this package lacks
}

// requiredTags are the tags RFC 6376 §3.5 marks REQUIRED.
var requiredTags = [...]string{"v", "a", "b", "bh", "d", "h", "s"}

// parseSignature parses the value of a DKIM-Signature field (everything
// after the colon) with the RFC 6376 §3.5 parser ARC shares
// (internal/sigfield). It fills in what it can even when it returns an
// error, so that a permerror still names d= and s=.
func parseSignature(value string) (*sigTags, error) {
	f, err := sigfield.Parse(value)
	st := &sigTags{
		algorithm: f.Algorithm,
		b:         f.B,
		bh:        f.BH,
		sig:       f.Sig,
		bodyHash:  f.BodyHash,
		name:      f.Domain,
		headers:   f.Headers,
		hasLength: f.Tags.Has("l"),
		hasExpiry: f.HasExpiry,
		expiry:    f.Expiry,
		query:     f.Query,
		hasQuery:  f.HasQuery,
		hc:        f.HC,
		bc:        f.BC,
		canonErr:  f.CanonErr,
	}
	get := func(name string) string {
		v, _ := f.Tags.Get(name)
		return tagvalue.StripFWS(v)
	}
	// RFC 8616 §5: d= and s= may be U-labels in an internationalized
	// message; the key is looked up under the A-labels, so a name with
	// U-labels or A-labels is kept in its A-label form, any other as
	// written.
	st.domain, st.selector, st.identifier = get("d"), get("s"), get("i")
	if f.Domain.IsIDN() {
		st.domain = f.Domain.ASCII
	}
	if f.Selector.IsIDN() {
		st.selector = f.Selector.ASCII
	}
	if err != nil && f.Tags == nil {
		return st, fmt.Errorf("%w: %w", ErrMalformed, err) // not a tag-list
	}
	for _, name := range requiredTags {
		if !f.Tags.Has(name) {
			return st, fmt.Errorf("%w: missing required tag %s=", ErrMalformed, name)
		}
	}
	// RFC 6376 §3.5: v= MUST be "1"; a signature with another version is
	// not understood and cannot be verified.
	if v := get("v"); v != "1" {
		return st, fmt.Errorf("%w: unsupported version v=%s", ErrMalformed, v)
	}
	if err != nil {
		return st, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return st, nil
}

// algorithms splits a= into its key type and hash (RFC 6376 §3.5:
// sig-a-tag-k "-" sig-a-tag-h).
func (st *sigTags) algorithms() (key, hash string) {
	key, hash, _ = strings.Cut(st.algorithm, "-")
	return key, hash
}

// checkSignature applies the checks of RFC 6376 §6.1.1 that need neither
// the key nor the clock, in the order go-msgauth applied them (so that a
// signature wrong in several ways keeps its reason): i= within d=, From in
// h=, then q=.
func (st *sigTags) checkSignature() error {
	// §6.1.1: "the domain specified in the d= tag is the same as or a
	// parent domain of the domain part of the i= tag". i= is
	// [local-part] "@" domain (§3.5); domains compare case-insensitively.
	// RFC 8616 §5: either may be in U-labels; they compare as A-labels.
	st.idName = st.name
	if st.identifier != "" {
		at := strings.LastIndexByte(st.identifier, '@')
		id, err := domain.Parse(st.identifier[at+1:])
		if at < 0 || err != nil || !id.IsSameOrUnder(st.name) {
			return fmt.Errorf("%w: i=%s", ErrDomainMismatch, st.identifier)
		}
		st.idName = id
		if id.IsIDN() {
			// Reported, like d=, in A-labels (RFC 8616 §5).
			st.identifier = st.identifier[:at+1] + id.ASCII
		}
	}
	// §6.1.1: "If the h= tag does not include the From header field, the
	// Verifier MUST ignore the DKIM-Signature header field and return
	// PERMFAIL (From field not signed)."
	from := false
	for _, h := range st.headers {
		if strings.EqualFold(h, "From") {
			from = true
			break
		}
	}
	if !from {
		return ErrFromNotSigned
	}
	// §3.5 q=: "dns/txt" is the only method defined; a list without it
	// leaves no way to get the key (§6.1.1: unsupported query method).
	if st.hasQuery {
		ok := false
		for q := range strings.SplitSeq(st.query, ":") {
			if q == "dns/txt" {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("%w: q=%s", ErrQueryMethod, st.query)
		}
	}
	return nil
}

// expired reports whether now is past x= (RFC 6376 §3.5).
func (st *sigTags) expired(now time.Time) bool {
	return st.hasExpiry && now.Unix() > st.expiry
}

func (st *sigTags) fill(s *Signature) {
	s.Domain = st.domain
	s.Identifier = st.identifier
	s.Selector = st.selector
	s.Algorithm = st.algorithm
	s.B = st.b
}
