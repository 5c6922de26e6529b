package engine

import (
	"bufio"
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/dkimkey"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/internal/testsupport/goroutines"
	"github.com/authmilter/authmilter/verify"
)

// sealedMessage is a message of example.com, DKIM-signed, that went
// through forwarder.test, which sealed it (ARC, RFC 8617): every check of
// the engine has work to do.
func sealedMessage(t *testing.T, w *world) string {
	t.Helper()
	signed := w.sign(t, "example.com", "sel", msgText("example.com", "", "Hello.\r\n"))
	return w.seal(t, signed, "spf=pass smtp.mailfrom=alice@example.com")
}

// seal returns text with an ARC Set by forwarder.test on top, its AAR
// carrying results.
func (w *world) seal(t *testing.T, text, results string) string {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(text))
	fields, err := message.ReadHeader(br, message.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	val := arc.NewValidator(context.Background(), w.dns, fields, nil)
	var body bytes.Buffer
	_ = message.BodyCRLF(br, 1024, func(c []byte) error { body.Write(c); _, err := val.Write(c); return err })
	chain := val.Close()
	sealer := &arc.Sealer{Domain: "forwarder.test", Selector: "seal", Key: w.sealKey}
	set, err := sealer.Seal(fields, val.BodyHash(), chain, "forwarder.test", results)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, f := range append(set, fields...) {
		out.Write(f.Raw)
	}
	out.WriteString("\r\n" + body.String())
	return out.String()
}

// daemonResolver is the resolver the daemon builds (dnscache.New: a Cache
// in front of a Client) asking a local server that answers from r.
func daemonResolver(t *testing.T, r dnscache.Resolver) dnscache.Resolver {
	t.Helper()
	res, err := dnscache.New(dnscache.Config{Servers: []string{dnstest.Serve(t, r)}, Timeout: 2 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestEngineWarmCacheStartsNoGoroutine: with the daemon's resolver warm, a
// whole message (Begin to End: SPF and HELO checks, DKIM and ARC key
// lookups, DMARC discovery) runs on the caller's goroutine and starts no
// other; with the cache cold the lookups run in the background, and every
// way the verdict is the one the test resolver gives. Not parallel: it
// counts the goroutines the whole program creates.
func TestEngineWarmCacheStartsNoGoroutine(t *testing.T) {
	w := newWorld(t)
	msg := sealedMessage(t, w)
	from := env("192.0.2.10", "helo.example.com", "alice@example.com")
	want, _, _ := run(t, w.engine(), from, msg)
	if want.Action != ActionAccept || want.DMARC.Status != verify.StatusPass || want.ARC.Status != verify.StatusPass ||
		want.HELO == nil || len(want.DKIM) != 1 || want.DKIM[0].Status != verify.StatusPass {
		t.Fatalf("reference verdict: %s %s", want.Action, want.AuthResults)
	}

	e := w.engine(func(e *Engine) {
		e.Resolver = daemonResolver(t, w.dns)
		e.Keys = dkimkey.NewCache(0)
	})
	for _, step := range []struct {
		name string
		warm bool
	}{{"cold", false}, {"warm", true}, {"warm again", true}} {
		before := goroutines.Created()
		v, _, _ := run(t, e, from, msg)
		n := goroutines.Created() - before
		if v.Action != want.Action || v.AuthResults != want.AuthResults {
			t.Errorf("%s: %s %q, want %s %q", step.name, v.Action, v.AuthResults, want.Action, want.AuthResults)
		}
		if step.warm && n != 0 {
			t.Errorf("%s: %d goroutines started", step.name, n)
		}
		if !step.warm && n == 0 {
			t.Errorf("%s: no goroutine started", step.name)
		}
	}
}

// gatedResolver answers only once its gate is open: a slow network.
type gatedResolver struct {
	dnscache.Resolver
	gate chan struct{}
}

func (g gatedResolver) LookupTXT(ctx context.Context, name string) ([]string, dnscache.AnswerInfo, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
	}
	return g.Resolver.LookupTXT(ctx, name)
}

func (g gatedResolver) LookupA(ctx context.Context, name string) ([]netip.Addr, dnscache.AnswerInfo, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
	}
	return g.Resolver.LookupA(ctx, name)
}

// TestEngineColdCacheLooksUpInBackground: with the cache cold, Begin and
// EndOfHeaders return while the lookups they started still wait for the
// network, and End has the right verdict once the answers come.
func TestEngineColdCacheLooksUpInBackground(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	msg := sealedMessage(t, w)
	from := env("192.0.2.10", "helo.example.com", "alice@example.com")
	want, _, _ := run(t, w.engine(), from, msg)

	gate := make(chan struct{})
	e := w.engine(func(e *Engine) {
		e.Resolver = daemonResolver(t, gatedResolver{w.dns, gate})
		e.Keys = dkimkey.NewCache(0)
	})
	br := bufio.NewReader(strings.NewReader(msg))
	fields, err := message.ReadHeader(br, message.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan *Evaluation)
	go func() {
		m := e.Begin(context.Background(), from)
		for _, f := range fields {
			m.Header(f)
		}
		m.EndOfHeaders()
		returned <- m
	}()
	var m *Evaluation
	select {
	case m = <-returned:
	case <-time.After(1500 * time.Millisecond): // below the 2s DNS timeout
		close(gate)
		t.Fatal("Begin and EndOfHeaders waited for the network")
	}
	close(gate)
	_ = message.BodyCRLF(br, 1024, func(c []byte) error { m.Body(c); return nil })
	if v := m.End(); v.Action != want.Action || v.AuthResults != want.AuthResults {
		t.Errorf("%s %q, want %s %q", v.Action, v.AuthResults, want.Action, want.AuthResults)
	}
}
