package engine

import (
	"bufio"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/verify"
)

// The speculation started at MAIL FROM (issue #19): the MAIL FROM domain's
// DMARC discovery, so that the answers are in the cache when the header
// arrives. These tests run the real resolver stack (dnscache.New over UDP)
// against a dnstest server, whose query log is what went on the wire.

// specWorld is a dnstest server and an engine whose resolver caches.
func specWorld(t *testing.T, records *dnstest.Resolver, dnsTimeout time.Duration, mod ...func(*Engine)) *Engine {
	t.Helper()
	r, err := dnscache.New(dnscache.Config{Servers: []string{dnstest.Serve(t, records)}, Timeout: dnsTimeout, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{Resolver: r, AuthservID: "mx.test", Policy: DefaultPolicy(), Timeout: 10 * time.Second}
	for _, f := range mod {
		f(e)
	}
	return e
}

// unsignedFrom is an unsigned message From alice@<from>.
func unsignedFrom(from string) string {
	return "From: Alice <alice@" + from + ">\r\nTo: bob@mx.test\r\nSubject: news\r\n" +
		"Date: Tue, 24 Nov 2026 08:00:00 +0000\r\nMessage-ID: <1@" + from + ">\r\n\r\nHello.\r\n"
}

// feed sends the header and body of msg to m and returns the verdict.
func feed(t *testing.T, m *Evaluation, msg string) *Verdict {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(msg))
	fields, err := message.ReadHeader(br, message.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		m.Header(f)
	}
	m.EndOfHeaders()
	if err := message.BodyCRLF(br, 64, func(c []byte) error { m.Body(c); return nil }); err != nil {
		t.Fatal(err)
	}
	return m.End()
}

func dmarcQueries(log []string) []string {
	var out []string
	for _, q := range log {
		if strings.HasPrefix(q, "TXT _dmarc.") {
			out = append(out, q)
		}
	}
	return out
}

// waitSpec waits for the speculation of m, within d.
func waitSpec(t *testing.T, m *Evaluation, d time.Duration) {
	t.Helper()
	if m.specDone == nil {
		t.Fatal("no speculation was started")
	}
	select {
	case <-m.specDone:
	case <-time.After(d):
		t.Fatalf("the speculation still runs after %v", d)
	}
}

// TestSpeculationLeavesNoDMARCQueryForEOM: unsigned mail whose From
// (example.com) shares the MAIL FROM domain's (bounce.example.com)
// Organizational Domain: once the speculation is over, the message's DMARC
// evaluation (discovery, and the walk from the SPF identifier for relaxed
// alignment) sends no query. A second message, warm, sends none at all.
// Without speculation, the same message sends its DMARC queries after the
// header: the control.
func TestSpeculationLeavesNoDMARCQueryForEOM(t *testing.T) {
	t.Parallel()
	records := func() *dnstest.Resolver {
		return &dnstest.Resolver{TXT: map[string][]string{
			"bounce.example.com": {"v=spf1 ip4:192.0.2.0/24 -all"},
			"_dmarc.example.com": {"v=DMARC1; p=reject"},
		}}
	}
	env := Envelope{ClientIP: netip.MustParseAddr("192.0.2.10"), HELO: "mta.example.com", MailFrom: "list@bounce.example.com", Rcpts: []string{"bob@mx.test"}}

	r := records()
	e := specWorld(t, r, 5*time.Second)
	m := e.Begin(context.Background(), env)
	waitSpec(t, m, 10*time.Second)
	spec := dmarcQueries(r.Queries())
	r.ResetQueries()
	v := feed(t, m, unsignedFrom("example.com"))
	if v.DMARC.Status != verify.StatusPass || v.SPF.Status != verify.StatusPass {
		t.Fatalf("spf %s, dmarc %s (%s): want both pass", v.SPF.Status, v.DMARC.Status, v.DMARC.Reason)
	}
	if left := dmarcQueries(r.Queries()); len(left) != 0 {
		t.Errorf("DMARC queries left for the end of message: %q", left)
	}
	want := []string{"TXT _dmarc.bounce.example.com", "TXT _dmarc.example.com", "TXT _dmarc.com"}
	if len(spec) != len(want) || v.Speculative != len(want) {
		t.Errorf("speculative queries %q (Verdict.Speculative %d), want %q", spec, v.Speculative, want)
	}

	// Warm: the second message starts no speculation and asks nothing.
	r.ResetQueries()
	m = e.Begin(context.Background(), env)
	if m.specDone != nil {
		t.Error("speculation started with the record in the cache")
	}
	v = feed(t, m, unsignedFrom("example.com"))
	if q := r.Queries(); len(q) != 0 || v.Speculative != 0 || v.DMARC.Status != verify.StatusPass {
		t.Errorf("warm: queries %q, speculative %d, dmarc %s", q, v.Speculative, v.DMARC.Status)
	}

	// The control: no speculation, the queries come after the header.
	r = records()
	e = specWorld(t, r, 5*time.Second, func(e *Engine) { e.SpeculativeQueries = -1 })
	m = e.Begin(context.Background(), env)
	if m.specDone != nil {
		t.Fatal("speculation started with SpeculativeQueries -1")
	}
	r.ResetQueries()
	if v := feed(t, m, unsignedFrom("example.com")); v.DMARC.Status != verify.StatusPass || len(dmarcQueries(r.Queries())) == 0 {
		t.Errorf("without speculation: dmarc %s, DMARC queries after the header %q", v.DMARC.Status, dmarcQueries(r.Queries()))
	}
}

// TestSpeculationBounded: at most SpeculativeQueries queries, and none
// past SpeculativeTimeout, even when the DNS never answers.
func TestSpeculationBounded(t *testing.T) {
	t.Parallel()
	env := Envelope{ClientIP: netip.MustParseAddr("192.0.2.10"), HELO: "mta.example.net", MailFrom: "x@a.b.c.example.net", Rcpts: []string{"bob@mx.test"}}

	// Five names to walk, two allowed.
	r := &dnstest.Resolver{}
	e := specWorld(t, r, 5*time.Second, func(e *Engine) { e.SpeculativeQueries = 2 })
	m := e.Begin(context.Background(), env)
	waitSpec(t, m, 10*time.Second)
	if q := dmarcQueries(r.Queries()); len(q) > 2 || m.speculative() != 2 {
		t.Errorf("speculative queries %q (counted %d), want at most 2", q, m.speculative())
	}
	m.Abort()

	// A DNS that never answers: the speculation ends at its timeout, long
	// before the resolver's.
	silent := &dnstest.Resolver{Fail: map[string]dnstest.Failure{}}
	for _, n := range []string{"a.b.c.example.net", "b.c.example.net", "c.example.net", "example.net", "net"} {
		silent.Fail["_dmarc."+n] = dnstest.Timeout
	}
	e = specWorld(t, silent, 30*time.Second, func(e *Engine) { e.SpeculativeTimeout = 100 * time.Millisecond })
	m = e.Begin(context.Background(), env)
	waitSpec(t, m, 10*time.Second)
	m.Abort()

	// And it ends with the message.
	e = specWorld(t, silent, 30*time.Second)
	m = e.Begin(context.Background(), env)
	m.Abort()
	waitSpec(t, m, 10*time.Second)
}

// TestSpeculationNotForNullPath: bounces (MAIL FROM:<>) and address
// literals predict nothing.
func TestSpeculationNotForNullPath(t *testing.T) {
	t.Parallel()
	e := specWorld(t, &dnstest.Resolver{}, 5*time.Second)
	for _, from := range []string{"", "x@[192.0.2.1]"} {
		m := e.Begin(context.Background(), Envelope{ClientIP: netip.MustParseAddr("192.0.2.10"), HELO: "mta.example.net", MailFrom: from})
		if m.specDone != nil {
			t.Errorf("MAIL FROM:<%s>: speculation started", from)
		}
		m.Abort()
	}
}
