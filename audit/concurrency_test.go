package audit

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache"
)

// gate holds every first lookup of each name until n lookups wait at once,
// then answers them all from the zone; a lookup whose context ends first is
// a timeout.
type gate struct {
	dnscache.Resolver
	n       int
	mu      sync.Mutex
	waiting int
	open    chan struct{}
	opened  bool
}

func (g *gate) wait(ctx context.Context, name string) error {
	g.mu.Lock()
	if !g.opened {
		g.waiting++
		if g.waiting == g.n {
			g.opened = true
			close(g.open)
		}
	}
	g.mu.Unlock()
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return dnscache.NewError(dnscache.ErrTemporary, name, "test", ctx.Err().Error(), true)
	}
}

func (g *gate) LookupTXT(ctx context.Context, name string) ([]string, dnscache.AnswerInfo, error) {
	if err := g.wait(ctx, name); err != nil {
		return nil, dnscache.AnswerInfo{}, err
	}
	return g.Resolver.LookupTXT(ctx, name)
}

func (g *gate) LookupMX(ctx context.Context, name string) ([]dnscache.MX, dnscache.AnswerInfo, error) {
	if err := g.wait(ctx, name); err != nil {
		return nil, dnscache.AnswerInfo{}, err
	}
	return g.Resolver.LookupMX(ctx, name)
}

func (g *gate) LookupA(ctx context.Context, name string) ([]netip.Addr, dnscache.AnswerInfo, error) {
	if err := g.wait(ctx, name); err != nil {
		return nil, dnscache.AnswerInfo{}, err
	}
	return g.Resolver.LookupA(ctx, name)
}

const gateZone = `example.com. TXT "v=spf1 -all"
example.com. MX 10 mx.example.com.
_dmarc.example.com. TXT "v=DMARC1; p=reject; rua=mailto:d@example.com"
`

// The seven groups of checks run at once: the gate opens only when all of
// them wait on their first lookup together.
func TestChecksRunConcurrently(t *testing.T) {
	t.Parallel()
	g := &gate{Resolver: loadZone(t, gateZone), n: 7, open: make(chan struct{})}
	rep := auditZone(t, "example.com", "", &Options{Resolver: g, Selectors: []string{"s1"}, Timeout: 20 * time.Second})
	for _, c := range rep.Checks {
		if strings.Contains(c.Detail, "could not be checked") {
			t.Errorf("%s %s: %s", c.Status, c.ID, c.Detail)
		}
	}
	expect(t, rep, "spf.record", StatusPass)
	expect(t, rep, "dmarc.policy", StatusPass)
}

// A lookup that does not answer in time is a warn that says the record
// could not be checked, never a missing record.
func TestTimeoutIsNotMissing(t *testing.T) {
	t.Parallel()
	g := &gate{Resolver: loadZone(t, gateZone), n: 1000, open: make(chan struct{})}
	rep := auditZone(t, "example.com", "", &Options{Resolver: g, Selectors: []string{"s1"}, Timeout: 50 * time.Millisecond})
	for _, id := range []string{"spf.record", "dmarc.record", "dkim.key", "mx", "mta_sts", "tls_rpt", "bimi"} {
		expect(t, rep, id, StatusWarn)
		expectDetail(t, rep, id, StatusWarn, "could not be checked")
	}
	if rep.Failed() {
		t.Errorf("timeouts failed a check:\n%s", dump(rep))
	}
}
