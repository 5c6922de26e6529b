package dmarc

import "github.com/authmilter/authmilter/verify"

// reduce applies t=y (RFC 9989 §4.7) or pct (RFC 7489 §6.6.4) to a failing
// message's disposition. Both ask for the next less strict policy: reject
// becomes quarantine, quarantine becomes none; none is unaffected. A record
// with t=y is not also sampled: RFC 9989 Appendix A.6 makes t=y the
// successor of pct=0, and reducing twice would go below what either asks.
func (e *evaluator) reduce(res *Result) {
	rec := res.Record
	if res.Disposition == PolicyNone {
		return
	}
	if rec.Testing {
		res.Disposition, res.Reduced = res.Disposition.lower(), ReducedTesting
		return
	}
	if rec.Percent >= 100 {
		return
	}
	res.Sampled = true
	// "MUST NOT enact the requested policy on more than the stated percent"
	// (RFC 7489 §6.6.4): the message is inside the sample when the draw
	// falls below pct.
	if e.opts.Rand(100) >= rec.Percent {
		res.Disposition, res.Reduced = res.Disposition.lower(), ReducedSampling
	}
}

// rank orders results for "apply the most strict policy selected among the
// checks that fail" (RFC 9989 §11.5): a failure with the strictest
// disposition first, then the results that leave the message unverified,
// and pass last, so that the combination passes only when every Author
// Domain does.
func rank(r Result) int {
	switch r.Status {
	case verify.StatusFail:
		return 10 + r.Disposition.strictness()
	case verify.StatusTemperror:
		return 5
	case verify.StatusPermerror:
		return 4
	case verify.StatusNone:
		return 3
	}
	return 2
}
