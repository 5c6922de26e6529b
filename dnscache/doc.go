// Package dnscache is authmilter's one DNS layer: the Resolver interface
// every verifier takes, a caching client built on github.com/miekg/dns, and
// a static zone-file override.
//
// Nothing else in the project imports miekg/dns. Errors are *net.DNSError
// values that unwrap to ErrNXDomain, ErrNoData or ErrTemporary, so callers
// branch with errors.Is and libraries that type-assert (go-msgauth) see the
// right IsNotFound/IsTemporary/IsTimeout flags.
package dnscache
