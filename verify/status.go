// Package verify holds what the SPF, DKIM, DMARC and Authentication-Results
// packages below it share: the result vocabulary of RFC 8601 §2.7.
package verify

// Status is a method result, spelled exactly as RFC 8601 §2.7 and the
// method RFCs write it, so that it goes straight into headers and logs.
// Not every method uses every value.
type Status string

// The results.
const (
	StatusNone      Status = "none"
	StatusPass      Status = "pass"
	StatusFail      Status = "fail"
	StatusSoftfail  Status = "softfail" // SPF only
	StatusNeutral   Status = "neutral"
	StatusPolicy    Status = "policy"
	StatusTemperror Status = "temperror"
	StatusPermerror Status = "permerror"
)

// Valid reports whether r is one of the results above.
func (r Status) Valid() bool {
	switch r {
	case StatusNone, StatusPass, StatusFail, StatusSoftfail, StatusNeutral,
		StatusPolicy, StatusTemperror, StatusPermerror:
		return true
	}
	return false
}
