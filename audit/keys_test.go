//go:debug rsa1024min=0

package audit

// The directive above lets the tests generate the RSA keys under 1024 bits
// that dkim.key must fail.
