package dmarc

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Policy is a Domain Owner Assessment Policy (the values of the p, sp and np
// tags, RFC 9989 §4.7), and also a disposition. The empty Policy means "not
// given".
type Policy string

// The policies, in increasing strictness.
const (
	PolicyNone       Policy = "none"
	PolicyQuarantine Policy = "quarantine"
	PolicyReject     Policy = "reject"
)

// strictness orders policies for "the most strict policy" (RFC 9989 §11.5).
func (p Policy) strictness() int {
	switch p {
	case PolicyReject:
		return 3
	case PolicyQuarantine:
		return 2
	case PolicyNone:
		return 1
	}
	return 0
}

// lower returns the next less strict policy (RFC 9989 §4.7 t=y, RFC 7489
// §6.6.4 pct): reject becomes quarantine, quarantine becomes none.
func (p Policy) lower() Policy {
	switch p {
	case PolicyReject:
		return PolicyQuarantine
	case PolicyQuarantine:
		return PolicyNone
	}
	return p
}

// Mode is an identifier alignment mode (adkim, aspf; RFC 9989 §4.7).
type Mode string

// The alignment modes.
const (
	ModeRelaxed Mode = "r"
	ModeStrict  Mode = "s"
)

// PSD is the value of the psd tag (RFC 9989 §4.7).
type PSD string

// The psd values.
const (
	PSDYes     PSD = "y" // the domain is a Public Suffix Domain
	PSDNo      PSD = "n" // the domain is an Organizational Domain
	PSDUnknown PSD = "u" // default: let the tree walk decide
)

// Record is a parsed DMARC Policy Record.
//
// Parsing is tolerant, as RFC 9989 §4.8 asks: unknown tags are ignored and
// a tag whose value does not parse is ignored in favour of its default; such
// tags are listed in Invalid. Only the version tag is strict.
type Record struct {
	// Policy is p; empty when the tag is absent or invalid. RFC 9989 §4.10.1
	// decides what a record without a valid p means (see Evaluate).
	Policy Policy
	// SubdomainPolicy is sp; empty when absent or invalid (then p applies).
	SubdomainPolicy Policy
	// NonexistentPolicy is np (RFC 9989 §4.7, from RFC 9091); empty when
	// absent or invalid (then sp, then p applies).
	NonexistentPolicy Policy
	// PSD is psd; PSDUnknown unless the record says y or n.
	PSD PSD
	// Testing is t=y (RFC 9989 §4.7): apply the next less strict policy.
	Testing bool
	// ADKIM and ASPF are the alignment modes; relaxed by default.
	ADKIM, ASPF Mode
	// Percent is the RFC 7489 §6.3 pct tag, 0–100, default 100. RFC 9989
	// removed it (Appendix A.6); it is still honoured (see Evaluate).
	Percent int
	// RUA and RUF are the reporting URIs as written (RFC 9989 §4.7), each
	// trimmed and without the obsolete "!size" suffix (RFC 9989 §4.8
	// obs-dmarc-uri). Entries that are not absolute URIs are dropped.
	RUA, RUF []string
	// FO is the failure-reporting options value as written (default "0").
	FO string
	// RF and RI are the RFC 7489 tags removed by RFC 9989 (Appendix C.5.2),
	// kept as written for reports; empty when absent.
	RF, RI string
	// Invalid names the known tags whose values did not parse, in record
	// order.
	Invalid []string
	// Duplicate names the tags given more than once; the first occurrence
	// is used (RFC 6376 §3.2 forbids duplicates, RFC 9989 §4.8 asks for
	// syntax errors to be ignored rather than fatal).
	Duplicate []string
	// Tags names the known tags given, lower case, in record order (the
	// first occurrence of each), so that removed tags such as pct can be
	// told apart from their defaults.
	Tags []string
	// Ignored lists, as written, the specs ignored as RFC 9989 §4.7 and
	// §4.8 ask: unknown tags and text that is no tag=value pair.
	Ignored []string
	// Raw is the record text as received.
	Raw string
}

// ErrNotDMARC is returned by ParseRecord for a TXT record that does not start
// with "v=DMARC1" (RFC 9989 §4.7: such records are ignored, and discarded
// during policy discovery, §4.10 step 2).
var ErrNotDMARC = errors.New("dmarc: not a DMARC record")

// IsDMARCRecord reports whether txt starts with the version tag
// "v=DMARC1" (RFC 9989 §4.7 and §4.10 step 2).
func IsDMARCRecord(txt string) bool {
	_, _, ok := splitVersion(txt)
	return ok
}

// splitVersion checks that txt starts with the version tag and returns the
// rest of the record after it. The tag name "v" follows ABNF rules and is
// case-insensitive (RFC 5234 §2.3); its value is case-sensitive (RFC 9989
// §4.7: %s"DMARC1"). Whitespace around "=" and before ";" is allowed
// (§4.8 equals, dmarc-sep); leading whitespace is tolerated.
func splitVersion(txt string) (version, rest string, ok bool) {
	s := strings.TrimLeft(txt, " \t")
	if len(s) == 0 || (s[0] != 'v' && s[0] != 'V') {
		return "", "", false
	}
	s = strings.TrimLeft(s[1:], " \t")
	if len(s) == 0 || s[0] != '=' {
		return "", "", false
	}
	s = s[1:]
	version = s
	if i := strings.IndexByte(s, ';'); i >= 0 {
		version, rest = s[:i], s[i+1:]
	}
	if strings.Trim(version, " \t") != "DMARC1" {
		return "", "", false
	}
	return "DMARC1", rest, true
}

// ParseRecord parses a DMARC Policy Record (RFC 9989 §4.7, §4.8). It fails
// only when txt is not a DMARC record at all (ErrNotDMARC); every other
// problem is recorded in Record.Invalid and the tag keeps its default.
//
// Tag names are matched without regard to case (they are ABNF literals,
// RFC 5234 §2.3), and so are the values of p, sp, np, psd, t, adkim and aspf
// (RFC 9989 §4.8 gives them as case-insensitive ABNF strings); only the
// version value is case-sensitive.
func ParseRecord(txt string) (*Record, error) {
	_, rest, ok := splitVersion(txt)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotDMARC, truncate(txt))
	}
	r := &Record{
		ADKIM:   ModeRelaxed,
		ASPF:    ModeRelaxed,
		PSD:     PSDUnknown,
		Percent: 100,
		FO:      "0",
		Raw:     txt,
	}
	seen := map[string]bool{"v": true}
	for spec := range strings.SplitSeq(rest, ";") {
		spec = trimWSP(spec)
		if spec == "" {
			continue // "v=DMARC1;" and ";;" leave empty specs
		}
		eq := strings.IndexByte(spec, '=')
		if eq <= 0 {
			// Not a tag=value pair: a syntax error, ignored (§4.8).
			r.Ignored = append(r.Ignored, spec)
			continue
		}
		name := strings.ToLower(trimWSP(spec[:eq]))
		value := trimWSP(spec[eq+1:])
		if !knownTag(name) {
			// RFC 9989 §4.7: unknown tags MUST be ignored.
			r.Ignored = append(r.Ignored, spec)
			continue
		}
		if seen[name] {
			r.Duplicate = append(r.Duplicate, name)
			continue
		}
		seen[name] = true
		r.Tags = append(r.Tags, name)
		if !r.setTag(name, value) {
			r.Invalid = append(r.Invalid, name)
		}
	}
	return r, nil
}

func knownTag(name string) bool {
	switch name {
	case "v", "p", "sp", "np", "psd", "t", "adkim", "aspf", "pct",
		"rua", "ruf", "fo", "rf", "ri":
		return true
	}
	return false
}

// setTag stores one tag and reports whether its value was valid.
func (r *Record) setTag(name, value string) bool {
	lv := strings.ToLower(value)
	switch name {
	case "p":
		r.Policy = parsePolicy(lv)
		return r.Policy != ""
	case "sp":
		r.SubdomainPolicy = parsePolicy(lv)
		return r.SubdomainPolicy != ""
	case "np":
		r.NonexistentPolicy = parsePolicy(lv)
		return r.NonexistentPolicy != ""
	case "psd":
		switch lv {
		case "y", "n", "u":
			r.PSD = PSD(lv)
			return true
		}
	case "t":
		switch lv {
		case "y":
			r.Testing = true
			return true
		case "n":
			return true
		}
	case "adkim", "aspf":
		if lv != "r" && lv != "s" {
			return false
		}
		if name == "adkim" {
			r.ADKIM = Mode(lv)
		} else {
			r.ASPF = Mode(lv)
		}
		return true
	case "pct":
		// RFC 7489 §6.3: an integer from 0 to 100 inclusive.
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 || n > 100 || strings.HasPrefix(value, "+") {
			return false
		}
		r.Percent = n
		return true
	case "rua", "ruf":
		uris, ok := parseURIList(value)
		if name == "rua" {
			r.RUA = uris
		} else {
			r.RUF = uris
		}
		return ok
	case "fo":
		if !validFO(lv) {
			return false
		}
		r.FO = lv
		return true
	case "rf":
		r.RF = value
		return value != ""
	case "ri":
		if _, err := strconv.ParseUint(value, 10, 32); err != nil {
			return false
		}
		r.RI = value
		return true
	}
	return false
}

func parsePolicy(v string) Policy {
	switch p := Policy(v); p {
	case PolicyNone, PolicyQuarantine, PolicyReject:
		return p
	}
	return ""
}

// parseURIList splits a dmarc-urilist (RFC 9989 §4.8) and keeps the entries
// that are absolute URIs, without the obsolete "!size" suffix. ok reports
// that every entry was kept.
func parseURIList(v string) (uris []string, ok bool) {
	ok = true
	for u := range strings.SplitSeq(v, ",") {
		u = trimWSP(u)
		if i := strings.LastIndexByte(u, '!'); i >= 0 && validReportSize(u[i+1:]) {
			u = u[:i] // obs-dmarc-report-size
		}
		if validURI(u) {
			uris = append(uris, u)
		} else {
			ok = false
		}
	}
	return uris, ok
}

// validURI is the check for "a syntactically valid reporting URI" (RFC 9989
// §4.10.1): an absolute URI (RFC 3986 §4.3) with something after the scheme.
func validURI(u string) bool {
	if u == "" || strings.ContainsAny(u, " \t") {
		return false
	}
	p, err := url.Parse(u)
	return err == nil && p.Scheme != "" && (p.Opaque != "" || p.Host != "" || p.Path != "")
}

// validReportSize matches 1*DIGIT ["k" / "m" / "g" / "t"].
func validReportSize(s string) bool {
	s = strings.TrimRight(strings.ToLower(s), "kmgt")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validFO checks a colon-separated list of 0, 1, d, s (RFC 9989 §4.8
// dmarc-fo), without the finer ordering rules of the ABNF.
func validFO(v string) bool {
	if v == "" {
		return false
	}
	for o := range strings.SplitSeq(v, ":") {
		switch trimWSP(o) {
		case "0", "1", "d", "s":
		default:
			return false
		}
	}
	return true
}

// HasValidRUA reports whether the record carries at least one syntactically
// valid aggregate-reporting URI (the condition of RFC 9989 §4.10.1 for a
// record without a valid p tag).
func (r *Record) HasValidRUA() bool { return len(r.RUA) > 0 }

// Has reports whether the record gives tag (lower case), valid or not.
func (r *Record) Has(tag string) bool { return slices.Contains(r.Tags, tag) }

// invalid reports whether tag was present with an invalid value.
func (r *Record) invalid(tag string) bool {
	for _, t := range r.Invalid {
		if t == tag {
			return true
		}
	}
	return false
}

func trimWSP(s string) string { return strings.Trim(s, " \t\r\n") }

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
