package arc

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/authmilter/authmilter/domain"
	"github.com/authmilter/authmilter/internal/canon"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/internal/tagvalue"
)

// The ARC header field names (RFC 8617 §4.1), matched case-insensitively.
const (
	HeaderAAR  = "ARC-Authentication-Results"
	HeaderAMS  = "ARC-Message-Signature"
	HeaderSeal = "ARC-Seal"
)

// ErrSyntax is wrapped by every error of the ARC header parsers.
var ErrSyntax = errors.New("arc: header syntax error")

// maxInstanceLimit is the largest instance number RFC 8617 §4.2.1 allows.
const maxInstanceLimit = 50

// algorithm is a signing algorithm: RFC 8617 §4.1.2 and §4.1.3 import the
// DKIM algorithms; RFC 8301 retired rsa-sha1 and RFC 8463 added Ed25519.
type algorithm string

const (
	algRSASHA256     algorithm = "rsa-sha256"
	algEd25519SHA256 algorithm = "ed25519-sha256"
)

func parseAlgorithm(v string) (algorithm, error) {
	// Tag values are case-sensitive (RFC 6376 §3.2).
	switch a := algorithm(v); a {
	case algRSASHA256, algEd25519SHA256:
		return a, nil
	}
	return "", fmt.Errorf("%w: unsupported a=%q", ErrSyntax, v)
}

// keyType is the k= a key record must have for the algorithm.
func (a algorithm) keyType() string {
	if a == algEd25519SHA256 {
		return "ed25519"
	}
	return "rsa"
}

// aar is a parsed ARC-Authentication-Results field (RFC 8617 §4.1.1).
type aar struct {
	instance int
	field    message.Field
	text     string // authserv-id and results, unfolded
}

// ams is a parsed ARC-Message-Signature (RFC 8617 §4.1.2).
type ams struct {
	instance   int
	field      message.Field
	alg        algorithm
	sig        []byte
	bodyHash   []byte
	domain     string
	selector   string
	headers    []string
	hc, bc     canon.Canon
	limit      int64 // l=, -1 when absent
	hasTime    bool
	time       int64
	hasCanonic bool // c= present
}

// seal is a parsed ARC-Seal (RFC 8617 §4.1.3).
type seal struct {
	instance int
	field    message.Field
	alg      algorithm
	sig      []byte
	domain   string
	selector string
	cv       string
	time     int64
}

// parseInstance reads an i= value (RFC 8617 §4.2.1: 1*2DIGIT, 1 to 50,
// here up to max).
func parseInstance(v string, max int) (int, error) {
	if v == "" || len(v) > 3 || strings.Trim(v, "0123456789") != "" {
		return 0, fmt.Errorf("%w: invalid instance i=%q", ErrSyntax, v)
	}
	n, _ := strconv.Atoi(v)
	if n < 1 || n > max {
		return 0, fmt.Errorf("%w: instance i=%d out of range 1..%d", ErrSyntax, n, max)
	}
	return n, nil
}

// parseAAR parses an ARC-Authentication-Results value:
//
//	arc-info = instance [CFWS] ";" authres-payload   (RFC 8617 §4.1.1)
//
// The instance tag must come first.
func parseAAR(f message.Field, max int) (*aar, error) {
	v := unfold(f.Value())
	rest := strings.TrimLeft(v, " \t")
	if !strings.HasPrefix(rest, "i") {
		return nil, fmt.Errorf("%w: %s does not start with i=", ErrSyntax, HeaderAAR)
	}
	rest = strings.TrimLeft(rest[1:], " \t")
	if !strings.HasPrefix(rest, "=") {
		return nil, fmt.Errorf("%w: %s does not start with i=", ErrSyntax, HeaderAAR)
	}
	rest = strings.TrimLeft(rest[1:], " \t")
	semi := strings.IndexByte(rest, ';')
	if semi < 0 {
		return nil, fmt.Errorf("%w: %s has no ';' after i=", ErrSyntax, HeaderAAR)
	}
	n, err := parseInstance(strings.TrimRight(rest[:semi], " \t"), max)
	if err != nil {
		return nil, err
	}
	text := strings.TrimSpace(rest[semi+1:])
	if text == "" {
		return nil, fmt.Errorf("%w: %s i=%d has no authserv-id", ErrSyntax, HeaderAAR, n)
	}
	return &aar{instance: n, field: f, text: text}, nil
}

// unfold removes the CRLFs of folding and collapses runs of whitespace.
func unfold(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// parseTags parses the tag-list of an AMS or AS and its instance.
func parseTags(f message.Field, max int) (tagvalue.List, int, error) {
	tags, err := tagvalue.Parse(f.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", f.Name, errors.Join(ErrSyntax, err))
	}
	iv, ok := tags.Get("i")
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s has no i= tag", ErrSyntax, f.Name)
	}
	n, err := parseInstance(iv, max)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", f.Name, err)
	}
	return tags, n, nil
}

// required returns the value of a tag that must be present and non-empty.
func required(tags tagvalue.List, name, header string, instance int) (string, error) {
	v, ok := tags.Get(name)
	if !ok {
		return "", fmt.Errorf("%w: %s i=%d has no %s= tag", ErrSyntax, header, instance, name)
	}
	if v == "" {
		return "", fmt.Errorf("%w: %s i=%d has an empty %s= tag", ErrSyntax, header, instance, name)
	}
	return v, nil
}

func parseBase64(tags tagvalue.List, name, header string, instance int) ([]byte, error) {
	v, err := required(tags, name, header, instance)
	if err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(tagvalue.StripFWS(v))
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%w: %s i=%d %s= is not base64", ErrSyntax, header, instance, name)
	}
	return b, nil
}

// parseDomain checks a d= value (RFC 6376 §3.5 sig-d-tag = domain-name)
// with domain.Parse. RFC 8616 §5 lets an internationalized message carry
// U-labels there; the key is looked up under the A-labels, so a d= with
// U-labels or A-labels is returned in its A-label form, any other as given.
func parseDomain(tags tagvalue.List, header string, instance int) (string, error) {
	d, err := required(tags, "d", header, instance)
	if err != nil {
		return "", err
	}
	n, err := domain.Parse(d)
	if err != nil {
		return "", fmt.Errorf("%w: %s i=%d d=: %w", ErrSyntax, header, instance, err)
	}
	return idnASCII(d, n), nil
}

// parseSelector checks s= (RFC 6376 §3.1: dot-separated sub-domains; RFC
// 8616 §5: U-labels allowed, looked up as A-labels).
func parseSelector(tags tagvalue.List, header string, instance int) (string, error) {
	s, err := required(tags, "s", header, instance)
	if err != nil {
		return "", err
	}
	n, err := validSelector(s)
	if err != nil {
		return "", fmt.Errorf("%w: %s i=%d s=: %w", ErrSyntax, header, instance, err)
	}
	return idnASCII(s, n), nil
}

// validSelector parses a selector: a domain name without a trailing dot.
func validSelector(s string) (domain.Name, error) {
	if strings.HasSuffix(s, ".") {
		return domain.Name{}, fmt.Errorf("selector %q ends in a dot", s)
	}
	return domain.Parse(s)
}

// idnASCII returns the A-label form of a name that has U-labels or
// A-labels, and s as written otherwise.
func idnASCII(s string, n domain.Name) string {
	if n.IsIDN() {
		return n.ASCII
	}
	return s
}

// parseTime checks an optional t= (RFC 6376 §3.5: 1*12DIGIT).
func parseTime(tags tagvalue.List, header string, instance int) (int64, bool, error) {
	v, ok := tags.Get("t")
	if !ok {
		return 0, false, nil
	}
	if v == "" || len(v) > 12 || strings.Trim(v, "0123456789") != "" {
		return 0, false, fmt.Errorf("%w: %s i=%d t=%q is not a timestamp", ErrSyntax, header, instance, v)
	}
	t, _ := strconv.ParseInt(v, 10, 64)
	return t, true, nil
}

// parseAMS parses an ARC-Message-Signature. RFC 8617 §4.1.2: the DKIM-Signature
// tags (RFC 6376 §3.5) without v=, with i= the ARC instance. Required:
// i, a, b, bh, d, h, s. c= defaults to simple/simple as in DKIM.
func parseAMS(f message.Field, max int) (*ams, error) {
	tags, n, err := parseTags(f, max)
	if err != nil {
		return nil, err
	}
	m := &ams{instance: n, field: f, limit: -1}
	const h = HeaderAMS
	a, err := required(tags, "a", h, n)
	if err != nil {
		return nil, err
	}
	if m.alg, err = parseAlgorithm(a); err != nil {
		return nil, fmt.Errorf("%s i=%d: %w", h, n, err)
	}
	if m.sig, err = parseBase64(tags, "b", h, n); err != nil {
		return nil, err
	}
	if m.bodyHash, err = parseBase64(tags, "bh", h, n); err != nil {
		return nil, err
	}
	if m.domain, err = parseDomain(tags, h, n); err != nil {
		return nil, err
	}
	if m.selector, err = parseSelector(tags, h, n); err != nil {
		return nil, err
	}
	hv, err := required(tags, "h", h, n)
	if err != nil {
		// RFC 6376 §3.5: h= holds at least one field name.
		return nil, err
	}
	for name := range strings.SplitSeq(hv, ":") {
		name = tagvalue.StripFWS(name)
		if name == "" {
			// "h=from::to": RFC 6376 §3.5's ABNF has no empty hdr-name,
			// but the suite (ams_fields_h_mis_hdr) and deployed signers
			// accept one. It selects no field, so skipping it cannot
			// widen what the signature covers.
			continue
		}
		// RFC 8617 §4.1.2: ARC-Seal fields MUST NOT be signed by the AMS,
		// since a later AS would change what the AMS covered.
		if strings.EqualFold(name, HeaderSeal) {
			return nil, fmt.Errorf("%w: %s i=%d h= includes %s", ErrSyntax, h, n, HeaderSeal)
		}
		m.headers = append(m.headers, name)
	}
	if !containsFold(m.headers, "From") {
		// RFC 6376 §5.4 / §6.1.1: the From field MUST be signed; a
		// signature whose h= lacks it is ignored.
		return nil, fmt.Errorf("%w: %s i=%d h= does not include From", ErrSyntax, h, n)
	}
	m.hc, m.bc = canon.Simple, canon.Simple
	if c, ok := tags.Get("c"); ok {
		m.hasCanonic = true
		if m.hc, m.bc, err = canon.ParseAlgorithms(c); err != nil {
			return nil, fmt.Errorf("%w: %s i=%d c=%q", ErrSyntax, h, n, c)
		}
	}
	if l, ok := tags.Get("l"); ok {
		if l == "" || len(l) > 76 || strings.Trim(l, "0123456789") != "" {
			return nil, fmt.Errorf("%w: %s i=%d l=%q", ErrSyntax, h, n, l)
		}
		if m.limit, err = strconv.ParseInt(l, 10, 64); err != nil {
			return nil, fmt.Errorf("%w: %s i=%d l=%q", ErrSyntax, h, n, l)
		}
	}
	if m.time, m.hasTime, err = parseTime(tags, h, n); err != nil {
		return nil, err
	}
	return m, nil
}

// parseSeal parses an ARC-Seal (RFC 8617 §4.1.3). Required: i, a, b, cv,
// d, s; t optional. The AS has no h= (its scope is fixed by §5.1.1) and a
// seal carrying one is invalid.
func parseSeal(f message.Field, max int) (*seal, error) {
	tags, n, err := parseTags(f, max)
	if err != nil {
		return nil, err
	}
	s := &seal{instance: n, field: f}
	const h = HeaderSeal
	a, err := required(tags, "a", h, n)
	if err != nil {
		return nil, err
	}
	if s.alg, err = parseAlgorithm(a); err != nil {
		return nil, fmt.Errorf("%s i=%d: %w", h, n, err)
	}
	if s.sig, err = parseBase64(tags, "b", h, n); err != nil {
		return nil, err
	}
	cv, err := required(tags, "cv", h, n)
	if err != nil {
		return nil, err
	}
	// RFC 8617 §4.1.3: cv = "none" / "fail" / "pass". Written in lower
	// case; tag values are case-sensitive (RFC 6376 §3.2).
	switch cv {
	case "none", "fail", "pass":
		s.cv = cv
	default:
		return nil, fmt.Errorf("%w: %s i=%d cv=%q", ErrSyntax, h, n, cv)
	}
	if s.domain, err = parseDomain(tags, h, n); err != nil {
		return nil, err
	}
	if s.selector, err = parseSelector(tags, h, n); err != nil {
		return nil, err
	}
	if tags.Has("h") {
		return nil, fmt.Errorf("%w: %s i=%d has an h= tag", ErrSyntax, h, n)
	}
	if s.time, _, err = parseTime(tags, h, n); err != nil {
		return nil, err
	}
	return s, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
