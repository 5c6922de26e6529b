// Package verify holds what the SPF, DKIM, DMARC and Authentication-Results
// packages below it share: the result vocabulary of RFC 8601 §2.7.
package verify

// Result is a method result, spelled exactly as RFC 8601 §2.7 and the
// method RFCs write it, so that it goes straight into headers and logs.
// Not every method uses every value.
type Result string

// The results.
const (
	ResultNone      Result = "none"
	ResultPass      Result = "pass"
	ResultFail      Result = "fail"
	ResultSoftfail  Result = "softfail" // SPF only
	ResultNeutral   Result = "neutral"
	ResultPolicy    Result = "policy"
	ResultTemperror Result = "temperror"
	ResultPermerror Result = "permerror"
)

// Valid reports whether r is one of the results above.
func (r Result) Valid() bool {
	switch r {
	case ResultNone, ResultPass, ResultFail, ResultSoftfail, ResultNeutral,
		ResultPolicy, ResultTemperror, ResultPermerror:
		return true
	}
	return false
}
