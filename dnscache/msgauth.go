package dnscache

import "context"

// TXTFunc adapts r to the TXT lookup function of github.com/emersion/go-msgauth
// (dkim.VerifyOptions.LookupTXT, dmarc.LookupOptions.LookupTXT), whose calls
// carry no context: every lookup uses ctx, typically the message's
// deadline. Errors are returned unchanged, as the *net.DNSError that
// go-msgauth classifies by type assertion (Temporary() → temperror, any
// other → permerror).
func TXTFunc(ctx context.Context, r Resolver) func(domain string) ([]string, error) {
	return func(domain string) ([]string, error) {
		txt, _, err := r.LookupTXT(ctx, domain)
		if err != nil {
			return nil, err
		}
		return txt, nil
	}
}
