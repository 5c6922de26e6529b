package audit

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache"
)

// loadZone parses a master file written by a test; its names are absolute,
// so it needs no $ORIGIN or SOA.
func loadZone(t *testing.T, text string) *dnscache.Zone {
	t.Helper()
	z, err := dnscache.LoadZone(strings.NewReader(text), "", t.Name()+".zone")
	if err != nil {
		t.Fatalf("zone:\n%s\n%v", text, err)
	}
	return z
}

// failing answers from a Resolver except at the names in temp, where every
// lookup is a temporary failure (SERVFAIL).
type failing struct {
	dnscache.Resolver
	temp map[string]bool
}

func (f failing) fail(name string) error {
	if f.temp[strings.ToLower(strings.TrimSuffix(name, "."))] {
		return dnscache.NewError(dnscache.ErrTemporary, name, "test", "SERVFAIL", false)
	}
	return nil
}

func (f failing) LookupTXT(ctx context.Context, name string) ([]string, dnscache.AnswerInfo, error) {
	if err := f.fail(name); err != nil {
		return nil, dnscache.AnswerInfo{}, err
	}
	return f.Resolver.LookupTXT(ctx, name)
}

func (f failing) LookupA(ctx context.Context, name string) ([]netip.Addr, dnscache.AnswerInfo, error) {
	if err := f.fail(name); err != nil {
		return nil, dnscache.AnswerInfo{}, err
	}
	return f.Resolver.LookupA(ctx, name)
}

func (f failing) LookupMX(ctx context.Context, name string) ([]dnscache.MX, dnscache.AnswerInfo, error) {
	if err := f.fail(name); err != nil {
		return nil, dnscache.AnswerInfo{}, err
	}
	return f.Resolver.LookupMX(ctx, name)
}

// auditZone audits domain against a zone written by the test.
func auditZone(t *testing.T, domain, zone string, opts *Options) Report {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Resolver == nil {
		o.Resolver = loadZone(t, zone)
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	return Domain(context.Background(), domain, &o)
}

// expect checks the worst status of the checks with id.
func expect(t *testing.T, rep Report, id string, want Status) {
	t.Helper()
	got, ok := rep.Worst(id)
	if !ok {
		t.Errorf("no %s check in\n%s", id, dump(rep))
		return
	}
	if got != want {
		t.Errorf("%s = %s, want %s\n%s", id, got, want, dump(rep))
	}
}

// expectDetail checks that a check with id and status says want.
func expectDetail(t *testing.T, rep Report, id string, status Status, want string) {
	t.Helper()
	for _, c := range rep.Checks {
		if c.ID == id && c.Status == status && strings.Contains(c.Detail, want) {
			if status != StatusPass && c.Fix == "" {
				t.Errorf("%s %s has no fix", id, status)
			}
			return
		}
	}
	t.Errorf("no %s %s check saying %q in\n%s", status, id, want, dump(rep))
}

func dump(rep Report) string {
	var b strings.Builder
	for _, c := range rep.Checks {
		fmt.Fprintf(&b, "  %s %s: %s\n", c.Status, c.ID, c.Detail)
	}
	return b.String()
}

// rsaRecord returns a new RSA key of bits and its DKIM key record.
func rsaRecord(t *testing.T, bits int) (*rsa.PrivateKey, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return k, "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
}

// txt quotes a record for a zone file, split in 255-octet strings.
func txt(s string) string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, `"`+s[:255]+`"`)
		s = s[255:]
	}
	return strings.Join(append(parts, `"`+s+`"`), " ")
}
