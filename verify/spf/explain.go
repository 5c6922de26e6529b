package spf

// This file produces the explanation of a fail (RFC 7208 §6.2).

// DefaultExplanation is the explanation of a fail whose record gives none
// that can be used, unless Options.DefaultExplanation replaces it. It is an
// explain-string (§6.2): macros are expanded.
const DefaultExplanation = "domain of %{o} does not designate %{c} as permitted sender"

// explanation returns the explanation of the fail out: the exp= text of the
// record that decided, or else the default. §6.2: any problem with exp=
// (invalid target, DNS error, not exactly one TXT record, invalid
// explain-string) means "proceed as if no exp modifier was given". The
// lookup counts against no limit.
func (c *checker) explanation(out outcome, def string) string {
	if out.exp != nil {
		if s, ok := c.fetchExplanation(out.exp, out.expDomain); ok {
			return s
		}
	}
	ms, _, err := parseMacroString(def, modeExplain)
	if err != nil {
		return def
	}
	s, err := ms.expand(c.env(out.expDomain))
	if err != nil {
		return def
	}
	return s
}

// fetchExplanation looks up and expands the exp= text at domain.
func (c *checker) fetchExplanation(m *modifier, domain string) (string, bool) {
	name, kind := c.target(m.domain, domain)
	if kind != targetOK || c.ctx.Err() != nil {
		return "", false
	}
	txts, _, err := c.r.LookupTXT(c.ctx, name)
	if err != nil || len(txts) != 1 {
		return "", false
	}
	ms, _, err := parseMacroString(txts[0], modeExplain)
	if err != nil {
		return "", false
	}
	s, err := ms.expand(c.env(domain))
	if err != nil {
		return "", false
	}
	return s, true
}
