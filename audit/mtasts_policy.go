package audit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/authmilter/authmilter/internal/tagvalue"
)

// This file parses the two MTA-STS texts of RFC 8461: the _mta-sts TXT
// record (§3.1) and the policy file (§3.2).

// ErrMTASTS is wrapped by every MTA-STS parse error.
var ErrMTASTS = errors.New("mta-sts")

// STSRecord is a parsed _mta-sts TXT record (RFC 8461 §3.1).
type STSRecord struct {
	ID string // id=, 1 to 32 letters and digits
}

// IsSTSRecord reports whether txt starts with "v=STSv1" (RFC 8461 §3.1:
// other records are discarded).
func IsSTSRecord(txt string) bool {
	v, _, _ := strings.Cut(txt, ";")
	k, val, ok := strings.Cut(v, "=")
	return ok && strings.TrimSpace(k) == "v" && strings.TrimSpace(val) == "STSv1"
}

// ParseSTSRecord parses an _mta-sts TXT record:
//
//	sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
//	sts-version     = %s"v=STSv1"
//	sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
func ParseSTSRecord(txt string) (*STSRecord, error) {
	if !IsSTSRecord(txt) {
		return nil, fmt.Errorf("%w: record does not start with v=STSv1", ErrMTASTS)
	}
	tags, err := tagvalue.Parse(txt)
	if err != nil {
		return nil, fmt.Errorf("%w: record: %w", ErrMTASTS, err)
	}
	id, ok := tags.Get("id")
	if !ok {
		return nil, fmt.Errorf("%w: record has no id=", ErrMTASTS)
	}
	if len(id) < 1 || len(id) > 32 || strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) >= 0 {
		return nil, fmt.Errorf("%w: id=%q: want 1 to 32 letters and digits", ErrMTASTS, id)
	}
	return &STSRecord{ID: id}, nil
}

// STSMode is the mode of an MTA-STS policy (RFC 8461 §5).
type STSMode string

// The modes.
const (
	STSEnforce STSMode = "enforce"
	STSTesting STSMode = "testing"
	STSNone    STSMode = "none"
)

// maxSTSMaxAge is the largest max_age (RFC 8461 §3.2: 31557600, one year).
const maxSTSMaxAge = 31557600

// STSPolicy is a parsed MTA-STS policy file (RFC 8461 §3.2).
type STSPolicy struct {
	Mode   STSMode
	MaxAge int      // seconds
	MX     []string // patterns as written, lower case: "mx.example.com", "*.example.net"
}

// maxPolicySize bounds the policy file read (RFC 8461 §3.3 lets senders
// limit it; 64 KiB is far beyond any real policy).
const maxPolicySize = 64 << 10

// ParseSTSPolicy parses a policy file: lines of "key: value" separated by
// CRLF (LF accepted), with the keys version (STSv1), mode, max_age and mx
// (repeatable; required unless mode is none). Unknown keys are ignored; of
// a repeated key other than mx the first counts (§3.2).
func ParseSTSPolicy(text string) (*STSPolicy, error) {
	if len(text) > maxPolicySize {
		return nil, fmt.Errorf("%w: policy larger than %d bytes", ErrMTASTS, maxPolicySize)
	}
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("%w: policy is not UTF-8 text", ErrMTASTS)
	}
	p := &STSPolicy{}
	seen := map[string]bool{}
	var version, mode, maxAge string
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%w: policy line %d: %q is not key: value", ErrMTASTS, n+1, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "mx" {
			if !validMXPattern(v) {
				return nil, fmt.Errorf("%w: policy line %d: mx: %q is not a host name or *.domain", ErrMTASTS, n+1, v)
			}
			p.MX = append(p.MX, strings.ToLower(strings.TrimSuffix(v, ".")))
			continue
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		switch k {
		case "version":
			version = v
		case "mode":
			mode = v
		case "max_age":
			maxAge = v
		}
	}
	if version != "STSv1" {
		return nil, fmt.Errorf("%w: policy version %q, want STSv1", ErrMTASTS, version)
	}
	switch STSMode(mode) {
	case STSEnforce, STSTesting, STSNone:
		p.Mode = STSMode(mode)
	default:
		return nil, fmt.Errorf("%w: policy mode %q, want enforce, testing or none", ErrMTASTS, mode)
	}
	// max_age = 1*10DIGIT, at most 31557600.
	age, err := strconv.Atoi(maxAge)
	if err != nil || len(maxAge) > 10 || strings.HasPrefix(maxAge, "+") || strings.HasPrefix(maxAge, "-") || age > maxSTSMaxAge {
		return nil, fmt.Errorf("%w: policy max_age %q, want 0 to %d seconds", ErrMTASTS, maxAge, maxSTSMaxAge)
	}
	p.MaxAge = age
	if len(p.MX) == 0 && p.Mode != STSNone {
		return nil, fmt.Errorf("%w: policy has no mx: line", ErrMTASTS)
	}
	return p, nil
}

// validMXPattern checks an mx value: a host name, optionally with "*." as
// its first label (RFC 8461 §3.2, §4.1).
func validMXPattern(v string) bool {
	v = strings.TrimPrefix(strings.TrimSuffix(v, "."), "*.")
	if v == "" || len(v) > 253 || !strings.Contains(v, ".") {
		return false
	}
	for l := range strings.SplitSeq(v, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Matches reports whether the policy's mx patterns cover host (RFC 8461
// §4.1): equal, or "*." followed by the host minus its first label.
func (p *STSPolicy) Matches(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, pat := range p.MX {
		if pat == host {
			return true
		}
		if rest, ok := strings.CutPrefix(pat, "*."); ok {
			if _, parent, ok := strings.Cut(host, "."); ok && parent == rest {
				return true
			}
		}
	}
	return false
}
