package dmarcreport

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// Disposition is the policy action applied to a message (RFC 9990 §2.1.1
// "policy_evaluated", ActionDispositionType): none, pass, quarantine or
// reject.
type Disposition string

// The dispositions.
const (
	DispositionNone       Disposition = "none"
	DispositionPass       Disposition = "pass"
	DispositionQuarantine Disposition = "quarantine"
	DispositionReject     Disposition = "reject"
)

// Aligned is the DMARC-aligned result of DKIM or SPF (DMARCResultType):
// pass or fail.
type Aligned string

// The aligned results.
const (
	AlignedPass Aligned = "pass"
	AlignedFail Aligned = "fail"
)

// ReasonType is a policy override type (RFC 9990 §2.1.6 "Policy Override
// Reason").
type ReasonType string

// The override types.
const (
	ReasonLocalPolicy      ReasonType = "local_policy"
	ReasonMailingList      ReasonType = "mailing_list"
	ReasonOther            ReasonType = "other"
	ReasonPolicyTestMode   ReasonType = "policy_test_mode"
	ReasonTrustedForwarder ReasonType = "trusted_forwarder"
)

// Valid reports whether t is one of the types RFC 9990 defines.
func (t ReasonType) Valid() bool {
	switch t {
	case ReasonLocalPolicy, ReasonMailingList, ReasonOther, ReasonPolicyTestMode, ReasonTrustedForwarder:
		return true
	}
	return false
}

// Reason is why the disposition differs from the published policy.
type Reason struct {
	Type    ReasonType `json:"type"`
	Comment string     `json:"comment,omitempty"`
}

// DKIMResult is one DKIM signature's result (RFC 9990 §2.1.1 "dkim"):
// uninterpreted with respect to DMARC.
type DKIMResult struct {
	Domain      string `json:"domain"`
	Selector    string `json:"selector"`
	Result      string `json:"result"` // RFC 8601 §2.7.1
	HumanResult string `json:"human,omitempty"`
}

// SPFResult is the SPF result for the MAIL FROM identity (RFC 9990 §2.1.1
// "spf"; scope is always mfrom).
type SPFResult struct {
	Domain      string `json:"domain"`
	Result      string `json:"result"` // RFC 8601 §2.7.2
	HumanResult string `json:"human,omitempty"`
}

// Policy is the published DMARC policy as found (RFC 9990 §2.1.1
// "policy_published"). Empty optional fields are left out of the report.
type Policy struct {
	Domain    string `json:"domain"`           // the DMARC Policy Domain
	P         string `json:"p"`                // none, quarantine, reject
	SP        string `json:"sp,omitempty"`     // as published, or empty
	NP        string `json:"np,omitempty"`     // as published, or empty
	ADKIM     string `json:"adkim,omitempty"`  // r or s
	ASPF      string `json:"aspf,omitempty"`   // r or s
	Discovery string `json:"method,omitempty"` // treewalk or psl
	FO        string `json:"fo,omitempty"`
	Testing   string `json:"t,omitempty"` // y or n
	// RUA are the record's aggregate report URIs, in record order. They
	// are not part of the XML; the sender needs them.
	RUA []string `json:"rua,omitempty"`
}

// Row is what identical messages share: one "record" element of the report
// without its count. Rows with equal Key add up.
type Row struct {
	SourceIP     string       `json:"ip"`
	Disposition  Disposition  `json:"disp"`
	DKIM         Aligned      `json:"dkim"`
	SPF          Aligned      `json:"spf"`
	Reasons      []Reason     `json:"reasons,omitempty"`
	HeaderFrom   string       `json:"hfrom"`
	EnvelopeFrom string       `json:"efrom"` // empty for the null reverse-path
	EnvelopeTo   string       `json:"eto,omitempty"`
	DKIMResults  []DKIMResult `json:"dkimres,omitempty"`
	SPFResult    *SPFResult   `json:"spfres,omitempty"`
}

// Record is the facts of one judged message, as the judging core hands
// them over: the row it adds one to, the policy it was judged against, and
// when.
type Record struct {
	Policy Policy
	Row    Row
	Time   time.Time
}

// MaxDKIMResults is how many signatures a row carries at most (RFC 9990
// §2.1.3 "DKIM Signatures in Aggregate Reports": no more than 100).
const MaxDKIMResults = 100

// Normalize puts r into the canonical form its Key is computed from:
// domains lower case without a trailing dot, the source IP in its RFC 5952
// text form, DKIM results in the order of preference of RFC 9990 §2.1.3
// (passing signatures of the From domain first) and at most
// MaxDKIMResults of them. It returns an error for a record that cannot be
// reported.
func (r *Record) Normalize() error {
	p := &r.Policy
	p.Domain = normDomain(p.Domain)
	if p.Domain == "" {
		return fmt.Errorf("dmarcreport: record without a policy domain")
	}
	switch p.P {
	case "none", "quarantine", "reject":
	default:
		return fmt.Errorf("dmarcreport: policy of %s: p=%q is not none, quarantine or reject", p.Domain, p.P)
	}
	row := &r.Row
	ip, err := netip.ParseAddr(row.SourceIP)
	if err != nil {
		return fmt.Errorf("dmarcreport: record for %s: source IP: %w", p.Domain, err)
	}
	row.SourceIP = ip.Unmap().WithZone("").String()
	row.HeaderFrom = normDomain(row.HeaderFrom)
	row.EnvelopeFrom = normDomain(row.EnvelopeFrom)
	row.EnvelopeTo = normDomain(row.EnvelopeTo)
	for i := range row.DKIMResults {
		row.DKIMResults[i].Domain = normDomain(row.DKIMResults[i].Domain)
	}
	if row.SPFResult != nil {
		row.SPFResult.Domain = normDomain(row.SPFResult.Domain)
	}
	hf := row.HeaderFrom
	rank := func(d DKIMResult) int {
		switch {
		case d.Result == "pass" && d.Domain == hf:
			return 0 // strict alignment
		case d.Result == "pass" && (strings.HasSuffix(d.Domain, "."+hf) || strings.HasSuffix(hf, "."+d.Domain)):
			return 1 // relaxed alignment (approximated by the tree)
		case d.Result == "pass":
			return 2
		}
		return 3
	}
	sort.SliceStable(row.DKIMResults, func(i, j int) bool {
		return rank(row.DKIMResults[i]) < rank(row.DKIMResults[j])
	})
	if len(row.DKIMResults) > MaxDKIMResults {
		row.DKIMResults = row.DKIMResults[:MaxDKIMResults]
	}
	for _, rs := range row.Reasons {
		if !rs.Type.Valid() {
			return fmt.Errorf("dmarcreport: record for %s: override reason %q is not one of RFC 9990's", p.Domain, rs.Type)
		}
	}
	return nil
}

// Key is the row's identity: rows with the same Key in the same period and
// policy domain are one row of the report, their counts added. It is the
// row's canonical JSON, so ParseRow restores the row from it.
func (r Row) Key() string {
	b, err := json.Marshal(r)
	if err != nil {
		// Row holds only strings and slices of plain structs.
		panic(fmt.Sprintf("dmarcreport: marshal row: %v", err))
	}
	return string(b)
}

// ParseRow restores a Row from its Key.
func ParseRow(key string) (Row, error) {
	var r Row
	if err := json.Unmarshal([]byte(key), &r); err != nil {
		return Row{}, fmt.Errorf("dmarcreport: row key: %w", err)
	}
	return r, nil
}

// normDomain lowercases d and strips a trailing dot.
func normDomain(d string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
}

// Period returns the start of the reporting period t falls in, for
// periods of length interval counted from the Unix epoch: with the default
// of 24h, UTC days beginning at 0000UTC (RFC 9990 §2.1.1 "date_range").
func Period(t time.Time, interval time.Duration) time.Time {
	iv := int64(interval / time.Second)
	if iv <= 0 {
		iv = 86400
	}
	sec := t.Unix()
	m := sec % iv
	if m < 0 {
		m += iv
	}
	return time.Unix(sec-m, 0).UTC()
}
