package dkimsign

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

	"github.com/authmilter/authmilter/internal/canon"
	"github.com/authmilter/authmilter/internal/headerfold"
	"github.com/authmilter/authmilter/internal/message"
)

// HeaderName is the name of the field Sign writes.
const HeaderName = "DKIM-Signature"

// Algorithms (a=).
const (
	AlgRSASHA256     = "rsa-sha256"     // RFC 6376 §3.3.1
	AlgEd25519SHA256 = "ed25519-sha256" // RFC 8463 §3
)

// MinRSABits is the smallest RSA key Sign uses (RFC 8301 §3.2: signers MUST
// use at least 1024 bits); RecommendedRSABits is what RFC 8301 §3.2 says
// signers SHOULD use. Table loading warns about keys between the two.
const (
	MinRSABits         = 1024
	RecommendedRSABits = 2048
)

// DefaultHeaders are the fields signed once per occurrence when present:
// those RFC 6376 §5.4.1 recommends, the MIME fields, Message-ID, Sender,
// and List-Unsubscribe-Post (RFC 8058 §4 requires it signed).
var DefaultHeaders = []string{
	"From", "Reply-To", "Subject", "Date", "To", "Cc",
	"Resent-Date", "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc",
	"In-Reply-To", "References",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Subscribe", "List-Post", "List-Owner", "List-Archive",
	"List-Unsubscribe-Post",
	"Message-ID", "Sender", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	"Content-ID", "Content-Description",
}

// DefaultOversign are the fields a forger would add or change, signed once
// more than they occur (RFC 6376 §8.15), so that an added copy breaks the
// signature.
var DefaultOversign = []string{
	"From", "To", "Cc", "Subject", "Date", "Reply-To", "Message-ID", "Sender",
	"In-Reply-To", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	"List-Unsubscribe", "List-Unsubscribe-Post",
}

// ErrSigner reports a signing configuration or input that cannot work
// (domain, selector, key, header names, body hash).
var ErrSigner = errors.New("dkimsign: cannot sign")

// Key is one signing key with the d= and s= it signs under.
type Key struct {
	Domain   string        // d=, an A-label domain
	Selector string        // s=
	Signer   crypto.Signer // *rsa.PrivateKey or ed25519.PrivateKey
	// Identity, when set, is written as i= (RFC 6376 §3.5: the AUID; its
	// domain must be Domain or a subdomain of it).
	Identity string
}

// Algorithm returns the key's a= value, or "" for a key type DKIM does not
// define.
func (k Key) Algorithm() string {
	if k.Signer == nil {
		return ""
	}
	switch k.Signer.Public().(type) {
	case *rsa.PublicKey:
		return AlgRSASHA256
	case ed25519.PublicKey:
		return AlgEd25519SHA256
	}
	return ""
}

// Options are the knobs of Sign. The zero value (or nil) is the default.
type Options struct {
	// Headers are signed once per occurrence when present; nil means
	// DefaultHeaders.
	Headers []string
	// Oversign are signed once more than they occur, present or not; nil
	// means DefaultOversign, an empty non-nil slice none.
	Oversign []string
	// Expire, when positive, sets x= to t= plus Expire (RFC 6376 §3.5).
	Expire time.Duration
	// Now is the clock for t=; nil means time.Now.
	Now func() time.Time

	compiled *headerSpec // by Prepare
}

// Signature is one DKIM-Signature Sign wrote.
type Signature struct {
	Domain    string        `json:"domain"`
	Selector  string        `json:"selector"`
	Algorithm string        `json:"algorithm"`
	Field     message.Field `json:"-"` // Raw ends in CRLF, folded
}

// CheckHeaderNames validates a configured list of header field names.
func CheckHeaderNames(names []string) error {
	for _, h := range names {
		if h == "" || strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r > '~' || r == ':' || r == ';' }) {
			return fmt.Errorf("%w: invalid header name %q", ErrSigner, h)
		}
		// RFC 6376 §5.4: a signature must not cover itself.
		if strings.EqualFold(h, HeaderName) {
			return fmt.Errorf("%w: %s cannot sign itself", ErrSigner, HeaderName)
		}
	}
	return nil
}

// headerSpec is an Options' header lists compiled: each name once (its
// first spelling), and whether it is oversigned.
type headerSpec struct {
	names []string
	over  []bool
	from  bool // From is among names
}

func compileSpec(list, over []string) *headerSpec {
	s := &headerSpec{}
	add := func(name string, o bool) {
		for i, n := range s.names {
			if strings.EqualFold(n, name) {
				s.over[i] = s.over[i] || o
				return
			}
		}
		s.names = append(s.names, name)
		s.over = append(s.over, o)
		s.from = s.from || strings.EqualFold(name, "From")
	}
	for _, h := range list {
		add(h, containsFold(over, h))
	}
	for _, h := range over {
		add(h, true)
	}
	return s
}

// spec returns the compiled header lists: those Prepare made, or made now.
func (o *Options) spec() *headerSpec {
	if o != nil && o.compiled != nil {
		return o.compiled
	}
	list, over := DefaultHeaders, DefaultOversign
	if o != nil && o.Headers != nil {
		list = o.Headers
	}
	if o != nil && o.Oversign != nil {
		over = o.Oversign
	}
	return compileSpec(list, over)
}

// Prepare checks the header names of o and compiles its lists once, so
// that Sign does neither per message. Call it before o is shared; o must
// not be changed afterwards.
func (o *Options) Prepare() error {
	if err := CheckHeaderNames(o.Headers); err != nil {
		return err
	}
	if err := CheckHeaderNames(o.Oversign); err != nil {
		return err
	}
	o.compiled = nil
	o.compiled = o.spec()
	return nil
}

// HeaderList returns the h= names for header: each name of opts.Headers
// once per field of that name present, each name of opts.Oversign once
// more than it occurs, From at least once (RFC 6376 §5.4). Names keep the
// configured spelling (matching is case-insensitive, §3.5).
func HeaderList(header []message.Field, opts *Options) []string {
	spec := opts.spec()
	fieldNames := make([]string, len(header))
	for i, f := range header {
		fieldNames[i] = strings.TrimRight(f.Name, " \t")
	}
	names := make([]string, 0, len(header)+len(spec.names)/2)
	if !spec.from {
		// RFC 6376 §5.4: From MUST be signed.
		names = append(names, "From")
	}
	for i, name := range spec.names {
		n := 0
		for _, fn := range fieldNames {
			if len(fn) == len(name) && strings.EqualFold(fn, name) {
				n++
			}
		}
		if spec.over[i] {
			n++
		}
		for range n {
			names = append(names, name)
		}
	}
	return names
}

// Sign returns one DKIM-Signature field per key, in the order of keys, to
// be prepended at the top of the message (their relative order does not
// matter: no signature covers another). header is the message's header as
// it will be passed on; bodyHash the relaxed/sha256 hash of its body
// (canon.NewBodyHasher(canon.Relaxed, crypto.SHA256, -1)).
func Sign(header []message.Field, bodyHash []byte, keys []Key, opts *Options) ([]Signature, error) {
	if len(bodyHash) != sha256.Size {
		return nil, fmt.Errorf("%w: body hash of %d bytes, want a SHA-256 hash", ErrSigner, len(bodyHash))
	}
	if opts == nil {
		opts = &Options{}
	}
	if opts.compiled == nil {
		if err := CheckHeaderNames(opts.Headers); err != nil {
			return nil, err
		}
		if err := CheckHeaderNames(opts.Oversign); err != nil {
			return nil, err
		}
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	t := now().Unix()
	names := HeaderList(header, opts)
	// The selected fields' canonical form is the same for every key.
	var hdr []byte
	for _, f := range canon.Select(header, names) {
		hdr = canon.AppendHeader(hdr, canon.Relaxed, f.Raw)
	}
	tTag := headerfold.Piece{S: "t=" + strconv.FormatInt(t, 10) + ";"}
	// RFC 6376 §3.5: x= must be greater than t=.
	xTag := headerfold.Piece{S: "x=" + strconv.FormatInt(t+max(int64(opts.Expire/time.Second), 1), 10) + ";"}
	bhTag := headerfold.Piece{S: "bh=" + base64.StdEncoding.EncodeToString(bodyHash) + ";"}
	hNames := headerfold.Names("h", names, ";")
	out := make([]Signature, 0, len(keys))
	for _, k := range keys {
		alg, err := checkKey(k)
		if err != nil {
			return nil, err
		}
		// The tags before b=, the same in the signed and the final field.
		head := make([]headerfold.Piece, 0, 12+len(hNames)+10)
		head = append(head, headerfold.Piece{S: "v=1;"}, headerfold.Piece{S: "a=" + alg + ";"}, headerfold.Piece{S: "c=relaxed/relaxed;"},
			headerfold.Piece{S: "d=" + k.Domain + ";"}, headerfold.Piece{S: "s=" + k.Selector + ";"})
		if k.Identity != "" {
			head = append(head, headerfold.Piece{S: "i=" + k.Identity + ";"})
		}
		head = append(head, tTag)
		if opts.Expire > 0 {
			head = append(head, xTag)
		}
		head = append(head, bhTag)
		head = append(head, hNames...)
		n := len(head)
		tags := func(b string) []headerfold.Piece {
			return append(head[:n], headerfold.Base64("b", b, "")...)
		}
		// RFC 6376 §3.7: the header hash covers the selected fields, then
		// this DKIM-Signature with an empty b= and without its final CRLF.
		data := make([]byte, 0, len(hdr)+512)
		data = append(data, hdr...)
		data = canon.AppendHeader(data, canon.Relaxed, headerfold.Fold(HeaderName, tags("")))
		data = data[:len(data)-2]
		sig, err := signData(k.Signer, data)
		if err != nil {
			return nil, fmt.Errorf("%w: d=%s s=%s: %w", ErrSigner, k.Domain, k.Selector, err)
		}
		out = append(out, Signature{
			Domain: k.Domain, Selector: k.Selector, Algorithm: alg,
			Field: message.Field{Name: HeaderName, Raw: headerfold.Fold(HeaderName, tags(sig))},
		})
	}
	return out, nil
}

// checkKey validates a key and returns its algorithm.
func checkKey(k Key) (string, error) {
	if !validDomain(k.Domain) {
		return "", fmt.Errorf("%w: invalid domain %q", ErrSigner, k.Domain)
	}
	if !validDomain(k.Selector) {
		return "", fmt.Errorf("%w: invalid selector %q", ErrSigner, k.Selector)
	}
	if k.Identity != "" {
		_, d, ok := strings.Cut(k.Identity, "@")
		d = strings.ToLower(d)
		if !ok || strings.ContainsAny(k.Identity, "; \t\r\n") || (d != strings.ToLower(k.Domain) && !strings.HasSuffix(d, "."+strings.ToLower(k.Domain))) {
			// RFC 6376 §3.5: the i= domain must be d= or a subdomain.
			return "", fmt.Errorf("%w: identity %q is not in domain %s", ErrSigner, k.Identity, k.Domain)
		}
	}
	if k.Signer == nil {
		return "", fmt.Errorf("%w: d=%s s=%s: no key", ErrSigner, k.Domain, k.Selector)
	}
	if pub, ok := k.Signer.Public().(*rsa.PublicKey); ok && pub.N.BitLen() < MinRSABits {
		return "", fmt.Errorf("%w: d=%s s=%s: RSA key of %d bits (RFC 8301 §3.2: at least %d)", ErrSigner, k.Domain, k.Selector, pub.N.BitLen(), MinRSABits)
	}
	alg := k.Algorithm()
	if alg == "" {
		return "", fmt.Errorf("%w: d=%s s=%s: unsupported key type %T", ErrSigner, k.Domain, k.Selector, k.Signer.Public())
	}
	return alg, nil
}

// signData signs the SHA-256 hash of data: RSASSA-PKCS1-v1_5 (RFC 6376
// §3.3.1) or Ed25519 over the hash (RFC 8463 §3), base64-encoded.
func signData(key crypto.Signer, data []byte) (string, error) {
	digest := sha256.Sum256(data)
	var opts crypto.SignerOpts = crypto.SHA256
	if _, ok := key.Public().(ed25519.PublicKey); ok {
		opts = crypto.Hash(0)
	}
	sig, err := key.Sign(rand.Reader, digest[:], opts)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// validDomain reports whether s is a sequence of LDH labels separated by
// dots (RFC 6376 §3.5 d= and s=: domain-name / sub-domain).
func validDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
