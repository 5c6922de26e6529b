package engine

import (
	"crypto"
	"fmt"

	"github.com/authmilter/authmilter/dkimsign"
	"github.com/authmilter/authmilter/internal/canon"
	"github.com/authmilter/authmilter/internal/message"
)

// startSigning chooses the DKIM keys for an unjudged message at end of
// headers: its source must be one Signing names and its From domain must
// have keys. The body hash then joins body.
func (m *Evaluation) startSigning(body *canon.BodySet) {
	s := m.e.Signing
	if s == nil || s.Keys == nil {
		return
	}
	auth := m.env.AuthUser != ""
	if !(auth && s.Authenticated || !auth && s.Internal && m.e.Policy.Internal(m.env.ClientIP, "")) {
		m.signSkip = "source not in dkim.sign.sources"
		return
	}
	from := m.fieldValues("From")
	if len(from) != 1 {
		// RFC 6376 §5.4 / RFC 5322 §3.6: one From field; with none or
		// several there is no author domain to sign for.
		m.signSkip = fmt.Sprintf("%d From fields", len(from))
		return
	}
	m.signKeys = s.Keys.Keys(from[0])
	if len(m.signKeys) == 0 {
		// Said in the log line, so that a missing key is not silent.
		_, domain, ok := dkimsign.SplitFrom(from[0])
		if !ok {
			m.signSkip = "From has no address"
		} else {
			m.signSkip = "no key for " + domain
		}
		return
	}
	m.signHash = body.Hasher(canon.Relaxed, crypto.SHA256, -1)
}

// sign adds the DKIM signatures chosen at end of headers to v.Insert.
func (m *Evaluation) sign(v *Verdict) {
	if m.signHash == nil {
		v.SignSkipped = m.signSkip
		return
	}
	if m.signBody != nil {
		m.signBody.Sum()
	}
	sigs, err := dkimsign.Sign(m.fields, m.signHash.Sum(), m.signKeys, m.e.Signing.Options)
	if err != nil {
		v.SignErr = err
		return
	}
	v.Signed = sigs
	fields := make([]message.Field, len(sigs))
	for i, s := range sigs {
		fields[i] = s.Field
	}
	v.Insert = append(fields, v.Insert...)
}
