package authres

import (
	"errors"

	"github.com/authmilter/authmilter/verify"
)

// Property is one propspec of a resinfo (RFC 8601 §2.2): ptype.property=value,
// for example {"smtp", "mailfrom", "user@example.com"}, {"header", "d",
// "example.com"} or {"policy", "dmarc", "reject"}.
type Property struct {
	Type  string // the ptype: smtp, header, body, policy (RFC 8601 §2.3)
	Name  string // the property
	Value string // the pvalue, unquoted
}

// Result is one resinfo of an Authentication-Results field (RFC 8601 §2.2).
type Result struct {
	Method  string        // "spf", "dkim", "dmarc", "arc", "iprev", ...
	Value   verify.Status // pass, fail, ...; empty is written as none
	Reason  string        // reason="..." (RFC 8601 §2.2), optional
	Comment string        // an RFC 5322 comment after the result, optional
	Props   []Property
	// PropsComment is a comment after the properties, optional: iprev
	// writes the name it checked there (policy.iprev=192.0.2.1
	// (mail.example.com), RFC 8601 §2.7.3).
	PropsComment string
}

// Header is a parsed Authentication-Results field value.
type Header struct {
	// AuthServID is the authserv-id as written (unquoted): compare it
	// with SameAuthServID.
	AuthServID string
	// Version is the authres-version, 0 when absent (which means version
	// 1, RFC 8601 §2.2).
	Version int
	// Results are the resinfos in order; empty for "none".
	Results []Result
}

// Errors returned by Parse and AuthServID; match them with errors.Is.
var (
	// ErrSyntax: the value does not follow the grammar of RFC 8601 §2.2
	// even read tolerantly.
	ErrSyntax = errors.New("authres: syntax error")
	// ErrNoAuthServID: the value has no authserv-id.
	ErrNoAuthServID = errors.New("authres: no authserv-id")
)
