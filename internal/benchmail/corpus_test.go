package benchmail_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/authmilter/authmilter/internal/benchmail"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/milter"
)

// TestCorpusVerdicts runs one message of every class through the engine and
// compares its verdicts with the class's expectations: the corpus exercises
// what it says it does.
func TestCorpusVerdicts(t *testing.T) {
	t.Parallel()
	c, err := benchmail.Generate(benchmail.Options{Seed: 7, PerClass: 1, Sizes: benchmail.Sizes[:2]})
	if err != nil {
		t.Fatal(err)
	}
	pol := milter.DefaultPolicy()
	pol.TrustedSealers = []string{benchmail.TrustedSealer}
	e := &milter.Engine{Resolver: c.Resolver(), AuthservID: benchmail.AuthservID, Policy: pol, Timeout: 5 * time.Second}
	for _, m := range c.Messages {
		t.Run(m.Name, func(t *testing.T) {
			env := m.Envelope
			msg := e.Begin(context.Background(), milter.Envelope{
				ClientIP: netip.MustParseAddr(env.ClientIP), HELO: env.HELO, MailFrom: env.MailFrom, Rcpts: env.Rcpts,
			})
			br := bufio.NewReader(bytes.NewReader(m.Data))
			fields, err := message.ReadHeader(br, message.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fields {
				msg.Header(f)
			}
			msg.EndOfHeaders()
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Fatal(err)
			}
			msg.Body(rest)
			v := msg.End()
			dkim := "none"
			for _, s := range v.DKIM {
				dkim = string(s.Result)
			}
			got := benchmail.Expect{SPF: string(v.SPF.Result), DKIM: dkim, DMARC: string(v.DMARC.Result), ARC: string(v.ARC.Result), Action: string(v.Action)}
			if got != m.Expect {
				t.Errorf("got %+v, want %+v\n%s", got, m.Expect, v.AuthResults)
			}
		})
	}
}

// TestDeterministic: the same seed gives the same zone and envelopes.
func TestDeterministic(t *testing.T) {
	t.Parallel()
	opts := benchmail.Options{Seed: 3, PerClass: 1, Sizes: benchmail.Sizes[:1], Classes: []benchmail.Class{benchmail.SPFOnly, benchmail.DMARCQuarantine}}
	a, err := benchmail.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := benchmail.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	if a.Zone != b.Zone {
		t.Error("zones differ")
	}
	for i := range a.Messages {
		// These classes carry no DKIM t= tag: byte-identical.
		if !bytes.Equal(a.Messages[i].Data, b.Messages[i].Data) {
			t.Errorf("%s differs", a.Messages[i].Name)
		}
	}
}
