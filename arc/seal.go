package arc

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/authmilter/authmilter/domain"
	"github.com/authmilter/authmilter/internal/canon"
	"github.com/authmilter/authmilter/internal/headerfold"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/internal/sigfield"
	"github.com/authmilter/authmilter/verify"
)

// DefaultHeaders is the AMS h= list a Sealer uses when Headers is nil:
// the fields that carry the message's identity and content.
var DefaultHeaders = []string{
	"From", "To", "Cc", "Subject", "Date", "Message-ID", "Reply-To",
	"In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "DKIM-Signature",
}

// Sealing errors.
var (
	// ErrChainFailed: the newest ARC-Seal already says cv=fail; RFC 8617
	// §5.1.2 has later hops not extend such a chain.
	ErrChainFailed = errors.New("arc: chain already sealed with cv=fail, not extended")
	// ErrTooManyInstances: the chain already has the most ARC Sets
	// allowed (50, RFC 8617 §4.2.1).
	ErrTooManyInstances = errors.New("arc: chain already has 50 ARC Sets")
	// ErrNoVerdict: the validation result is neither none, pass nor fail
	// (temperror: the chain's state is unknown, so no cv= can be given).
	ErrNoVerdict = errors.New("arc: no chain verdict to seal")
	// ErrSealer: the Sealer is misconfigured (domain, selector, key,
	// headers) or the inputs do not fit together.
	ErrSealer = errors.New("arc: cannot seal")
)

// Sealer adds ARC Sets (RFC 8617 §5.1) signed with one key.
type Sealer struct {
	Domain   string
	Selector string
	Key      crypto.Signer    // *rsa.PrivateKey (≥ 1024 bits, RFC 8301; LoadKey requires 2048) or ed25519.PrivateKey
	Headers  []string         // AMS h= list; nil → DefaultHeaders
	Now      func() time.Time // nil → time.Now
}

// Seal returns the three new header fields, in the order to prepend them at
// the top of the message (ARC-Seal first, then ARC-Message-Signature, then
// ARC-Authentication-Results), each a message.Field with Raw ending in
// CRLF, folded to ≤ 78 columns where possible.
//
// header is the message's header as received (with the ARC Sets that
// chain was computed from), bodyHash the relaxed/sha256 hash of the whole
// body (Validator.BodyHash), chain the result of validating the same
// message, authservID and results the content of this hop's
// Authentication-Results (results may be empty: "none" is written).
//
// The new seal's cv= is none for a message without ARC Sets, pass for a
// chain that validated, fail for one that did not (RFC 8617 §5.1.1,
// §5.1.2); a temperror chain cannot be sealed (ErrNoVerdict).
func (s *Sealer) Seal(header []message.Field, bodyHash []byte, chain Result, authservID, results string) ([]message.Field, error) {
	alg, err := s.check()
	if err != nil {
		return nil, err
	}
	if len(bodyHash) != sha256.Size {
		return nil, fmt.Errorf("%w: body hash of %d bytes, want a SHA-256 hash", ErrSealer, len(bodyHash))
	}
	authservID = strings.TrimSpace(authservID)
	if authservID == "" || strings.ContainsAny(authservID, "; \t\r\n") {
		return nil, fmt.Errorf("%w: invalid authserv-id %q", ErrSealer, authservID)
	}
	if strings.ContainsAny(results, "\r\n") {
		return nil, fmt.Errorf("%w: results contain a line break", ErrSealer)
	}

	// What is on the message now.
	var c Validator
	parseErr := c.collect(header, maxInstanceLimit)
	n := c.n
	if parseErr != nil {
		n = highestInstance(header)
	}
	if n > 0 && parseErr == nil && c.seals[n-1].cv == "fail" {
		return nil, ErrChainFailed
	}
	if k := len(chain.Sets); k > 0 && chain.Sets[k-1].CV == "fail" {
		return nil, ErrChainFailed
	}
	if n >= maxInstanceLimit {
		return nil, ErrTooManyInstances
	}
	var cv string
	switch chain.Status {
	case verify.StatusNone:
		if n != 0 {
			return nil, fmt.Errorf("%w: result none but the header has %d ARC Sets", ErrSealer, n)
		}
		cv = "none"
	case verify.StatusPass:
		if parseErr != nil || n == 0 || chain.Instances != n {
			return nil, fmt.Errorf("%w: result pass does not match the ARC Sets in the header", ErrSealer)
		}
		cv = "pass"
	case verify.StatusFail:
		cv = "fail"
	default:
		return nil, fmt.Errorf("%w (result %q)", ErrNoVerdict, chain.Status)
	}
	i := n + 1
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	t := strconv.FormatInt(now().Unix(), 10)
	inst := strconv.Itoa(i)

	// ARC-Authentication-Results (RFC 8617 §4.1.1).
	results = strings.TrimSpace(results)
	if results == "" {
		results = "none"
	}
	aarPieces := append([]piece{{S: "i=" + inst + ";"}, {S: authservID + ";"}}, words(results)...)
	aarField := message.Field{Name: HeaderAAR, Raw: fold(HeaderAAR, aarPieces)}

	// ARC-Message-Signature (RFC 8617 §4.1.2), relaxed/relaxed, tags in
	// alphabetical order.
	names := s.headerNames(header)
	amsTags := func(b string) []piece {
		p := []piece{{S: "a=" + string(alg) + ";"}}
		p = append(p, base64Pieces("b", b, ";")...)
		p = append(p, piece{S: "bh=" + base64.StdEncoding.EncodeToString(bodyHash) + ";", Own: true},
			piece{S: "c=relaxed/relaxed;"}, piece{S: "d=" + s.Domain + ";"})
		p = append(p, headerfold.Names("h", names, ";")...)
		return append(p, piece{S: "i=" + inst + ";"}, piece{S: "s=" + s.Selector + ";"}, piece{S: "t=" + t})
	}
	var buf []byte
	for _, f := range canon.Select(header, names) {
		buf = canon.AppendHeader(buf, canon.Relaxed, f.Raw)
	}
	buf = appendSelf(buf, canon.Relaxed, message.Field{Name: HeaderAMS, Raw: fold(HeaderAMS, amsTags(""))})
	sig, err := s.sign(buf)
	if err != nil {
		return nil, err
	}
	amsField := message.Field{Name: HeaderAMS, Raw: fold(HeaderAMS, amsTags(sig))}

	// ARC-Seal (RFC 8617 §4.1.3) over the ARC Sets (§5.1.1), or over the
	// new set alone for a failed chain (§5.1.2).
	sealTags := func(b string) []piece {
		p := []piece{{S: "a=" + string(alg) + ";"}}
		p = append(p, base64Pieces("b", b, ";")...)
		return append(p, piece{S: "cv=" + cv + ";", Own: true}, piece{S: "d=" + s.Domain + ";"},
			piece{S: "i=" + inst + ";"}, piece{S: "s=" + s.Selector + ";"}, piece{S: "t=" + t})
	}
	buf = buf[:0]
	if cv != "fail" {
		buf = appendSealScope(buf, c.aars, c.amss, c.seals)
	}
	buf = canon.AppendHeader(buf, canon.Relaxed, aarField.Raw)
	buf = canon.AppendHeader(buf, canon.Relaxed, amsField.Raw)
	buf = appendSelf(buf, canon.Relaxed, message.Field{Name: HeaderSeal, Raw: fold(HeaderSeal, sealTags(""))})
	sig, err = s.sign(buf)
	if err != nil {
		return nil, err
	}
	sealField := message.Field{Name: HeaderSeal, Raw: fold(HeaderSeal, sealTags(sig))}
	return []message.Field{sealField, amsField, aarField}, nil
}

// check validates the Sealer's configuration and returns its algorithm.
func (s *Sealer) check() (algorithm, error) {
	// The Sealer writes d= and s= as configured, into messages that may
	// not be internationalized: plain ASCII (A-labels for an IDN).
	d, err := domain.Parse(s.Domain)
	switch {
	case err != nil:
		return "", fmt.Errorf("%w: domain: %w", ErrSealer, err)
	case !isASCII(s.Domain):
		return "", fmt.Errorf("%w: domain %q: give its A-label form %q", ErrSealer, s.Domain, d.ASCII)
	}
	sel, err := sigfield.ParseSelector(s.Selector)
	switch {
	case err != nil:
		return "", fmt.Errorf("%w: selector: %w", ErrSealer, err)
	case !isASCII(s.Selector):
		return "", fmt.Errorf("%w: selector %q: give its A-label form %q", ErrSealer, s.Selector, sel.ASCII)
	}
	for _, h := range s.Headers {
		if h == "" || strings.ContainsAny(h, ": \t\r\n;") {
			return "", fmt.Errorf("%w: invalid header name %q", ErrSealer, h)
		}
		// RFC 8617 §4.1.2: ARC header fields MUST NOT be in the AMS h=.
		if strings.HasPrefix(strings.ToLower(h), "arc-") {
			return "", fmt.Errorf("%w: %s must not be signed by the AMS", ErrSealer, h)
		}
	}
	if s.Headers != nil && !containsFold(s.Headers, "From") {
		return "", fmt.Errorf("%w: Headers must include From (RFC 6376 §5.4)", ErrSealer)
	}
	if s.Key == nil {
		return "", fmt.Errorf("%w: no key", ErrSealer)
	}
	switch pub := s.Key.Public().(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < 1024 {
			return "", fmt.Errorf("%w: RSA key of %d bits (RFC 8301 §3.2: at least 1024)", ErrSealer, pub.N.BitLen())
		}
		return algRSASHA256, nil
	case ed25519.PublicKey:
		return algEd25519SHA256, nil
	default:
		return "", fmt.Errorf("%w: unsupported key type %T", ErrSealer, pub)
	}
}

// headerNames returns the AMS h= list: each configured name, lower-cased,
// once for every field of that name in the header.
func (s *Sealer) headerNames(header []message.Field) []string {
	list := s.Headers
	if list == nil {
		list = DefaultHeaders
	}
	var names []string
	seen := map[string]bool{}
	for _, h := range list {
		l := strings.ToLower(h)
		if seen[l] {
			continue
		}
		seen[l] = true
		for _, f := range header {
			if strings.EqualFold(f.Name, h) {
				names = append(names, l)
			}
		}
	}
	if len(names) == 0 || !containsFold(names, "from") {
		// From must be signed even when absent (RFC 6376 §5.4), which
		// also stops one being added later.
		names = append([]string{"from"}, names...)
	}
	return names
}

// sign signs the SHA-256 hash of data: RSASSA-PKCS1-v1_5 (RFC 6376 §3.3.1)
// or Ed25519 over the hash (RFC 8463 §3), base64-encoded.
func (s *Sealer) sign(data []byte) (string, error) {
	digest := sha256.Sum256(data)
	var opts crypto.SignerOpts = crypto.SHA256
	if _, ok := s.Key.Public().(ed25519.PublicKey); ok {
		opts = crypto.Hash(0)
	}
	sig, err := s.Key.Sign(rand.Reader, digest[:], opts)
	if err != nil {
		return "", fmt.Errorf("%w: signing: %w", ErrSealer, err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
