package engine

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/verify/dmarc"
	"github.com/authmilter/authmilter/verify/spf"
)

// The bounds of the speculative lookups started at MAIL FROM.
const (
	// DefaultSpeculativeQueries is one tree walk (RFC 9989 §4.10: at most
	// eight queries).
	DefaultSpeculativeQueries = 8
	// DefaultSpeculativeTimeout bounds their time.
	DefaultSpeculativeTimeout = 5 * time.Second
)

// errSpeculationBound is the error of a speculative lookup over the count.
var errSpeculationBound = errors.New("speculative DNS queries over the bound")

// startSpeculation starts at MAIL FROM what the envelope predicts: the
// DMARC policy discovery of the MAIL FROM domain, the From domain of most
// mail or one under the same Organizational Domain (a bounce address under
// the author's domain), whose answers are then in the resolver's cache when
// the header arrives. It is also the walk from the SPF identifier that
// relaxed alignment needs. The lookups are bounded in number
// (Engine.SpeculativeQueries) and time (Engine.SpeculativeTimeout), and
// cancelled with the message. Nothing is started for the null
// reverse-path, or when the resolver has the domain's record in memory
// already (a warm cache; Begin does not even call it when the SPF checks
// were answered from memory).
func (m *Evaluation) startSpeculation() {
	limit := m.e.SpeculativeQueries
	if limit == 0 {
		limit = DefaultSpeculativeQueries
	}
	_, domain := spf.SplitSender(m.env.MailFrom)
	if limit < 0 || domain == "" || strings.HasPrefix(domain, "[") {
		return
	}
	if _, err := netip.ParseAddr(domain); err == nil {
		return
	}
	name := "_dmarc." + strings.ToLower(strings.TrimSuffix(domain, "."))
	if dnscache.FromMemory(m.ctx, m.e.Resolver, func(ctx context.Context) { _, _, _ = m.e.Resolver.LookupTXT(ctx, name) }) {
		return
	}
	timeout := m.e.SpeculativeTimeout
	if timeout <= 0 {
		timeout = DefaultSpeculativeTimeout
	}
	s := &specResolver{Resolver: m.e.Resolver, max: int64(limit)}
	m.spec = s
	m.specDone = make(chan struct{})
	go func() {
		defer close(m.specDone)
		ctx, cancel := context.WithTimeout(m.ctx, timeout)
		defer cancel()
		_ = dmarc.Prefetch(ctx, s, domain, m.e.DMARC)
	}()
}

// speculative returns the queries the speculation made so far.
func (m *Evaluation) speculative() int {
	if m.spec == nil {
		return 0
	}
	return int(min(m.spec.n.Load(), m.spec.max))
}

// specResolver counts the TXT lookups made through it that the resolver
// could not answer from memory (queries on the wire, for a dnscache
// resolver; every lookup, for one that cannot tell), and refuses those
// over max.
type specResolver struct {
	dnscache.Resolver
	max int64
	n   atomic.Int64
}

// HonoursCacheOnly implements dnscache.CacheOnlyResolver for the resolver it wraps.
func (s *specResolver) HonoursCacheOnly() bool { return dnscache.HonoursCacheOnly(s.Resolver) }

// LookupTXT implements dnscache.Resolver.
func (s *specResolver) LookupTXT(ctx context.Context, name string) ([]string, dnscache.AnswerInfo, error) {
	if dnscache.IsCacheOnly(ctx) {
		return s.Resolver.LookupTXT(ctx, name)
	}
	var (
		txts []string
		res  dnscache.AnswerInfo
		err  error
	)
	if dnscache.FromMemory(ctx, s.Resolver, func(pctx context.Context) { txts, res, err = s.Resolver.LookupTXT(pctx, name) }) {
		return txts, res, err
	}
	if s.n.Add(1) > s.max {
		return nil, dnscache.AnswerInfo{}, dnscache.NewError(dnscache.ErrTemporary, name, "", errSpeculationBound.Error(), false)
	}
	return s.Resolver.LookupTXT(ctx, name)
}
