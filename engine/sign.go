package engine

import (
	"crypto"

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
		return
	}
	from := m.fieldValues("From")
	if len(from) != 1 {
		// RFC 6376 §5.4 / RFC 5322 §3.6: one From field; with none or
		// several there is no author domain to sign for.
		return
	}
	m.signKeys = s.Keys.Keys(from[0])
	if len(m.signKeys) > 0 {
		m.signHash = body.Hasher(canon.Relaxed, crypto.SHA256, -1)
	}
}

// sign adds the DKIM signatures chosen at end of headers to v.Insert.
func (m *Evaluation) sign(v *Verdict) {
	if m.signHash == nil {
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
