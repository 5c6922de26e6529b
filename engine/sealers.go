package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/authmilter/authmilter/internal/metrics"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/authres"
)

// SealerCounts is the evidence gathered on one ARC sealing domain: how
// often its chains validated, how often the messages it handled failed
// DMARC here, and how often it had recorded an upstream dmarc=pass. A
// sealer with many WouldOverride messages is one whose trust
// (arc.trusted_sealers) would have changed verdicts, on its word.
type SealerCounts struct {
	Domain string `json:"domain"`
	// Messages carried an ARC set sealed by Domain.
	Messages int64 `json:"messages"`
	// ChainPass: the chain validated (arc=pass, RFC 8617 §5.2).
	ChainPass int64 `json:"chain_pass"`
	// DMARCFail: the message failed DMARC here.
	DMARCFail int64 `json:"dmarc_fail"`
	// UpstreamDMARCPass: the chain validated and Domain's
	// ARC-Authentication-Results recorded dmarc=pass.
	UpstreamDMARCPass int64 `json:"upstream_dmarc_pass"`
	// WouldOverride: all three at once: DMARC failed here, the chain
	// validated, and Domain had seen dmarc=pass. These are the messages
	// trusting Domain would accept (with a reject or quarantine policy).
	WouldOverride int64     `json:"would_override"`
	FirstSeen     time.Time `json:"first_seen"`
	LastSeen      time.Time `json:"last_seen"`
}

// SealerStats gathers SealerCounts for at most Max sealing domains, as
// Prometheus metrics and in a state file. When full, a new domain takes
// the place of the one with the fewest validated chains seen longest ago,
// so that forged seals with made-up domains cannot crowd out the sealers
// that matter. It is safe for concurrent use; a nil *SealerStats records
// nothing.
type SealerStats struct {
	max     int
	now     func() time.Time
	counter *metrics.CounterVec // nil without a registry

	mu      sync.Mutex
	sealers map[string]*SealerCounts
}

// DefaultMaxSealers bounds the sealing domains tracked when no bound is
// given.
const DefaultMaxSealers = 500

// NewSealerStats returns an empty SealerStats for at most max domains
// (DefaultMaxSealers when max <= 0), registering its counter in reg when
// reg is not nil. now is the clock (nil: time.Now).
func NewSealerStats(reg *metrics.Registry, max int, now func() time.Time) *SealerStats {
	if max <= 0 {
		max = DefaultMaxSealers
	}
	if now == nil {
		now = time.Now
	}
	s := &SealerStats{max: max, now: now, sealers: map[string]*SealerCounts{}}
	if reg != nil {
		s.counter = reg.NewCounterVec("authmilter_arc_sealer_messages_total",
			"Messages with an ARC set by a sealing domain, by outcome: messages, chain_pass, dmarc_fail, upstream_dmarc_pass, would_override (see authmilter sealers).",
			"sealer", "outcome")
	}
	return s
}

// Record adds the evidence of one judged message: each distinct sealing
// domain of its ARC chain counts once.
func (s *SealerStats) Record(v *Verdict) {
	if s == nil || v == nil || v.Internal || v.ARC == nil || len(v.ARC.Sets) == 0 {
		return
	}
	chainPass := v.ARC.Status == verify.StatusPass
	dmarcFail := v.DMARC != nil && v.DMARC.Status == verify.StatusFail
	now := s.now().UTC()
	seen := map[string]bool{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, set := range v.ARC.Sets {
		dom := sealerLabel(set.Domain)
		if dom == "" || seen[dom] {
			continue
		}
		seen[dom] = true
		c := s.entry(dom, now)
		upstream := chainPass && aarDMARCPass(set.AAR)
		c.LastSeen = now
		s.add(c, &c.Messages, "messages", true)
		s.add(c, &c.ChainPass, "chain_pass", chainPass)
		s.add(c, &c.DMARCFail, "dmarc_fail", dmarcFail)
		s.add(c, &c.UpstreamDMARCPass, "upstream_dmarc_pass", upstream)
		s.add(c, &c.WouldOverride, "would_override", upstream && dmarcFail)
	}
}

func (s *SealerStats) add(c *SealerCounts, n *int64, outcome string, yes bool) {
	if !yes {
		return
	}
	*n++
	s.counter.Inc(c.Domain, outcome)
}

// entry returns dom's counts, making room when the table is full.
func (s *SealerStats) entry(dom string, now time.Time) *SealerCounts {
	if c := s.sealers[dom]; c != nil {
		return c
	}
	if len(s.sealers) >= s.max {
		var victim *SealerCounts
		for _, c := range s.sealers {
			if victim == nil || c.ChainPass < victim.ChainPass ||
				(c.ChainPass == victim.ChainPass && c.LastSeen.Before(victim.LastSeen)) {
				victim = c
			}
		}
		delete(s.sealers, victim.Domain)
		if s.counter != nil {
			s.counter.DeletePartialMatch(map[string]string{"sealer": victim.Domain})
		}
	}
	c := &SealerCounts{Domain: dom, FirstSeen: now}
	s.sealers[dom] = c
	return c
}

// aarDMARCPass reports whether an ARC-Authentication-Results value records
// dmarc=pass.
func aarDMARCPass(aar string) bool {
	h, err := authres.Parse(aar)
	if err != nil {
		return false
	}
	for _, r := range h.Results {
		if strings.EqualFold(r.Method, "dmarc") && r.Value == verify.StatusPass {
			return true
		}
	}
	return false
}

// sealerLabel normalises a sealing domain from a message for a table key
// and a metric label: lower case, no final dot, valid UTF-8, at most 253
// bytes; "" when nothing is left.
func sealerLabel(d string) string {
	d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
	if !utf8.ValidString(d) {
		d = strings.ToValidUTF8(d, "?")
	}
	if len(d) > 253 {
		d = d[:253]
	}
	return d
}

// Snapshot returns the counts, the most telling first: by WouldOverride,
// then Messages, then domain.
func (s *SealerStats) Snapshot() []SealerCounts {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	out := make([]SealerCounts, 0, len(s.sealers))
	for _, c := range s.sealers {
		out = append(out, *c)
	}
	s.mu.Unlock()
	SortSealers(out)
	return out
}

// SortSealers orders counts as Snapshot does.
func SortSealers(list []SealerCounts) {
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.WouldOverride != b.WouldOverride {
			return a.WouldOverride > b.WouldOverride
		}
		if a.Messages != b.Messages {
			return a.Messages > b.Messages
		}
		return a.Domain < b.Domain
	})
}

// sealerFile is the state file's content.
type sealerFile struct {
	Version int            `json:"version"`
	Written time.Time      `json:"written"`
	Sealers []SealerCounts `json:"sealers"`
}

// Save writes the counts to path atomically (a temporary file in the same
// directory, then rename), readable by the owner and group only.
func (s *SealerStats) Save(path string) error {
	data, err := json.MarshalIndent(sealerFile{Version: 1, Written: s.now().UTC(), Sealers: s.Snapshot()}, "", "  ")
	if err != nil {
		return fmt.Errorf("sealer stats: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".sealers-*.json")
	if err != nil {
		return fmt.Errorf("sealer stats: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	err = tmp.Chmod(0o640)
	if err == nil {
		_, err = tmp.Write(append(data, '\n'))
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("sealer stats: writing %s: %w", path, err)
	}
	return nil
}

// ErrSealerFile is returned for a state file that is not one.
var ErrSealerFile = errors.New("not a sealer state file")

// maxSealerFile bounds the state file read: a few hundred bytes per
// domain.
const maxSealerFile = 64 << 20

// LoadSealers reads a state file written by Save.
func LoadSealers(path string) ([]SealerCounts, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	var sf sealerFile
	dec := json.NewDecoder(io.LimitReader(f, maxSealerFile)) // a cut file does not decode
	if err := dec.Decode(&sf); err != nil || sf.Version != 1 {
		if err == nil {
			err = fmt.Errorf("version %d", sf.Version)
		}
		return nil, time.Time{}, fmt.Errorf("%s: %w: %v", path, ErrSealerFile, err)
	}
	SortSealers(sf.Sealers)
	return sf.Sealers, sf.Written, nil
}

// Restore adds counts read from a state file (a restart continues the
// counting), keeping at most the bound.
func (s *SealerStats) Restore(list []SealerCounts) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range list {
		dom := sealerLabel(c.Domain)
		if dom == "" || s.sealers[dom] != nil {
			continue
		}
		e := s.entry(dom, c.FirstSeen)
		*e = c
		e.Domain = dom
	}
}
