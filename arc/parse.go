package arc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/authmilter/authmilter/domain"
	"github.com/authmilter/authmilter/internal/canon"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/internal/sigfield"
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

// parseFields parses the tags of an AMS or AS with the RFC 6376 §3.5
// parser DKIM shares (internal/sigfield: one set of rules for d=, s=, b=,
// bh=, h=, c=, l=, t= and x=), and reads its instance.
func parseFields(f message.Field, max int) (*sigfield.Fields, int, error) {
	fields, err := sigfield.Parse(f.Value())
	if fields.Tags == nil && err != nil {
		return nil, 0, fmt.Errorf("%s: %w", f.Name, errors.Join(ErrSyntax, err))
	}
	iv, ok := fields.Tags.Get("i")
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s has no i= tag", ErrSyntax, f.Name)
	}
	n, ierr := parseInstance(iv, max)
	if ierr != nil {
		return nil, 0, fmt.Errorf("%s: %w", f.Name, ierr)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s i=%d: %w", f.Name, n, errors.Join(ErrSyntax, err))
	}
	return fields, n, nil
}

// instanceOf reads the i= of an AMS or AS whose other tags may be broken.
func instanceOf(f message.Field, max int) (int, error) {
	tags, err := tagvalue.Parse(f.Value())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.Name, errors.Join(ErrSyntax, err))
	}
	iv, ok := tags.Get("i")
	if !ok {
		return 0, fmt.Errorf("%w: %s has no i= tag", ErrSyntax, f.Name)
	}
	return parseInstance(iv, max)
}

// required checks that the tags are present: sigfield.Parse has checked
// that those present are not empty (a=, cv= excepted, checked here).
func required(fields *sigfield.Fields, header string, instance int, names ...string) error {
	for _, name := range names {
		v, ok := fields.Tags.Get(name)
		if !ok {
			return fmt.Errorf("%w: %s i=%d has no %s= tag", ErrSyntax, header, instance, name)
		}
		if v == "" {
			return fmt.Errorf("%w: %s i=%d has an empty %s= tag", ErrSyntax, header, instance, name)
		}
	}
	return nil
}

// ascii returns the form of a parsed d= or s= used for the key lookup and
// reported: the A-labels for a name with U-labels or A-labels (RFC 8616
// §5), the name as written otherwise.
func ascii(fields *sigfield.Fields, tag string, n domain.Name) string {
	if n.IsIDN() {
		return n.ASCII
	}
	v, _ := fields.Tags.Get(tag)
	return v
}

// parseAMS parses an ARC-Message-Signature. RFC 8617 §4.1.2: the DKIM-Signature
// tags (RFC 6376 §3.5) without v=, with i= the ARC instance. Required:
// i, a, b, bh, d, h, s. c= defaults to simple/simple as in DKIM.
func parseAMS(f message.Field, max int) (*ams, error) {
	fields, n, err := parseFields(f, max)
	if err != nil {
		return nil, err
	}
	const h = HeaderAMS
	// RFC 6376 §3.5: h= holds at least one field name.
	if err := required(fields, h, n, "a", "b", "bh", "d", "s", "h"); err != nil {
		return nil, err
	}
	m := &ams{instance: n, field: f, limit: fields.Length, sig: fields.Sig, bodyHash: fields.BodyHash,
		headers: fields.Headers, hc: fields.HC, bc: fields.BC, hasCanonic: fields.HasCanon,
		time: fields.Time, hasTime: fields.HasTime}
	if m.alg, err = parseAlgorithm(fields.Algorithm); err != nil {
		return nil, fmt.Errorf("%s i=%d: %w", h, n, err)
	}
	m.domain, m.selector = ascii(fields, "d", fields.Domain), ascii(fields, "s", fields.Selector)
	for _, name := range m.headers {
		// RFC 8617 §4.1.2: ARC-Seal fields MUST NOT be signed by the AMS,
		// since a later AS would change what the AMS covered.
		if strings.EqualFold(name, HeaderSeal) {
			return nil, fmt.Errorf("%w: %s i=%d h= includes %s", ErrSyntax, h, n, HeaderSeal)
		}
	}
	if !containsFold(m.headers, "From") {
		// RFC 6376 §5.4 / §6.1.1: the From field MUST be signed; a
		// signature whose h= lacks it is ignored.
		return nil, fmt.Errorf("%w: %s i=%d h= does not include From", ErrSyntax, h, n)
	}
	if fields.CanonErr != nil {
		c, _ := fields.Tags.Get("c")
		return nil, fmt.Errorf("%w: %s i=%d c=%q", ErrSyntax, h, n, c)
	}
	return m, nil
}

// parseSeal parses an ARC-Seal (RFC 8617 §4.1.3). Required: i, a, b, cv,
// d, s; t optional. The AS has no h= (its scope is fixed by §5.1.1) and a
// seal carrying one is invalid.
func parseSeal(f message.Field, max int) (*seal, error) {
	fields, n, err := parseFields(f, max)
	if err != nil {
		return nil, err
	}
	const h = HeaderSeal
	if err := required(fields, h, n, "a", "b", "cv", "d", "s"); err != nil {
		return nil, err
	}
	s := &seal{instance: n, field: f, sig: fields.Sig, time: fields.Time}
	if s.alg, err = parseAlgorithm(fields.Algorithm); err != nil {
		return nil, fmt.Errorf("%s i=%d: %w", h, n, err)
	}
	// RFC 8617 §4.1.3: cv = "none" / "fail" / "pass". Written in lower
	// case; tag values are case-sensitive (RFC 6376 §3.2).
	switch cv, _ := fields.Tags.Get("cv"); cv {
	case "none", "fail", "pass":
		s.cv = cv
	default:
		return nil, fmt.Errorf("%w: %s i=%d cv=%q", ErrSyntax, h, n, cv)
	}
	s.domain, s.selector = ascii(fields, "d", fields.Domain), ascii(fields, "s", fields.Selector)
	if fields.HasHeaders {
		return nil, fmt.Errorf("%w: %s i=%d has an h= tag", ErrSyntax, h, n)
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
