package dnscache_test

import (
	"context"
	"errors"
	"net"
	"reflect"
	"testing"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
)

// msgauthClass classifies a lookup error as go-msgauth v0.7.0's DKIM key
// query does (dkim/query.go): a type assertion to net.Error, then
// Temporary(); anything else is a permanent failure.
func msgauthClass(err error) string {
	if netErr, ok := err.(net.Error); ok && netErr.Temporary() {
		return "temperror"
	} else if err != nil {
		return "permerror"
	}
	return "ok"
}

// TXTFunc hands go-msgauth the *net.DNSError itself, so that its type
// assertion sees the flags: a temporary failure is a temperror, a missing
// key a permerror.
func TestTXTFunc(t *testing.T) {
	t.Parallel()
	r := &dnstest.Resolver{
		TXT:  map[string][]string{"sel._domainkey.example.com": {"v=DKIM1; p=abc"}},
		A:    map[string][]string{"a.example.com": {"192.0.2.1"}},
		Fail: map[string]dnstest.Failure{"servfail.example.com": dnstest.ServFail, "timeout.example.com": dnstest.Timeout},
	}
	lookup := dnscache.TXTFunc(context.Background(), r)
	for _, tc := range []struct {
		name, class string
		kind        error
	}{
		{"sel._domainkey.example.com", "ok", nil},
		{"servfail.example.com", "temperror", dnscache.ErrTemporary},
		{"timeout.example.com", "temperror", dnscache.ErrTemporary},
		{"nope.example.com", "permerror", dnscache.ErrNXDomain},
		{"a.example.com", "permerror", dnscache.ErrNoData},
	} {
		txt, err := lookup(tc.name)
		if got := msgauthClass(err); got != tc.class {
			t.Errorf("%s: go-msgauth would see %s (%v), want %s", tc.name, got, err, tc.class)
		}
		if tc.kind == nil {
			if !reflect.DeepEqual(txt, []string{"v=DKIM1; p=abc"}) {
				t.Errorf("%s: TXT = %q", tc.name, txt)
			}
			continue
		}
		if _, ok := err.(*net.DNSError); !ok || !errors.Is(err, tc.kind) {
			t.Errorf("%s: error %#v is not a *net.DNSError unwrapping to %v", tc.name, err, tc.kind)
		}
	}
}
