package engine

import "github.com/authmilter/authmilter/verify/dmarc"

// OverrideType says why a verdict differs from what the DMARC policy asked,
// in the PolicyOverrideType words of DMARC aggregate reports (RFC 9990,
// "Policy Override Reason", and its XSD): local_policy, mailing_list, trusted_forwarder,
// policy_test_mode, other; and sampled_out, RFC 7489 Appendix C's word for
// pct sampling, which only that mode has (RFC 9990 reports write it as
// other).
type OverrideType string

// The override types.
const (
	OverrideLocalPolicy      OverrideType = "local_policy"
	OverrideMailingList      OverrideType = "mailing_list"
	OverrideTrustedForwarder OverrideType = "trusted_forwarder"
	OverrideTestMode         OverrideType = "policy_test_mode"
	OverrideSampledOut       OverrideType = "sampled_out"
	OverrideOther            OverrideType = "other"
)

// Override is the reason a verdict differs from the DMARC policy's
// disposition: a type and a short comment naming the rule and the fact
// that triggered it ("ARC sealer lists.example.org reported dmarc=pass").
// The comment is written for a recipient to read in Authentication-Results:
// domain names and configuration keys, never addresses of resolvers, file
// paths or error chains; and without parentheses, which an A-R comment
// would have to escape. The zero Override means none applied.
type Override struct {
	Type    OverrideType
	Comment string
}

// IsZero reports whether no override applied.
func (o Override) IsZero() bool { return o.Type == "" }

// String is the form used everywhere the override is shown: the A-R
// policy.dmarc comment, the log line and `authmilter check`:
// "trusted_forwarder: ARC sealer lists.example.org reported dmarc=pass".
func (o Override) String() string {
	if o.Type == "" {
		return ""
	}
	if o.Comment == "" {
		return string(o.Type)
	}
	return string(o.Type) + ": " + o.Comment
}

// quarantineReason is the reason given to the MTA with the quarantine
// action (Postfix logs it with the hold).
func quarantineReason(d *dmarc.Result, o Override) string {
	r := "DMARC policy of " + d.PolicyDomain + " is " + string(d.Policy)
	if !o.IsZero() {
		r += "; " + o.String()
	}
	return r
}
