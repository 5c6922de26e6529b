package benchmail_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/engine"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/internal/testsupport/benchmail"
	"github.com/authmilter/authmilter/internal/testsupport/interop"
)

// TestCorpusVerdicts runs one message of every class through the engine and
// compares its verdicts with the class's expectations: the corpus exercises
// what it says it does, with its ARC chains sealed by dkimpy (the default)
// and by our own sealer.
func TestCorpusVerdicts(t *testing.T) {
	t.Parallel()
	t.Run("dkimpy", func(t *testing.T) {
		t.Parallel()
		interop.NeedPythonModule(t, "dkim", "python3-dkim")
		interop.NeedPythonModule(t, "authres", "python3-authres")
		c := checkVerdicts(t, benchmail.Options{Seed: 7, PerClass: 1, Sizes: benchmail.Sizes[:2]})
		if c.Sealer != benchmail.SealDkimpy {
			t.Errorf("sealer %q, want dkimpy by default", c.Sealer)
		}
		// dkimpy's mark: it separates the AMS h= names with " : ".
		m := c.Find(benchmail.ARC2Hop, benchmail.Sizes[0].Name)
		if n := bytes.Count(m.Data, []byte("ARC-Message-Signature:")); n != 2 || !bytes.Contains(m.Data, []byte("h=from : to")) {
			t.Errorf("arc-2hop: %d AMS, h= not as dkimpy writes it:\n%s", n, m.Data[:min(len(m.Data), 1500)])
		}
	})
	t.Run("distinct", func(t *testing.T) {
		t.Parallel()
		c := checkVerdicts(t, benchmail.Options{Seed: 7, PerClass: 2, Sizes: benchmail.Sizes[:1], Sealer: benchmail.SealOwn, DistinctSenders: true})
		// Every message has sender domains of its own: no two envelopes
		// share a MAIL FROM domain, and each is in the zone.
		seen := map[string]string{}
		for _, m := range c.Messages {
			_, d, _ := strings.Cut(m.Envelope.MailFrom, "@")
			if prev, ok := seen[d]; ok {
				t.Errorf("%s and %s share the MAIL FROM domain %s", prev, m.Name, d)
			}
			seen[d] = m.Name
			if !strings.Contains(c.Zone, "\n"+strings.TrimSuffix(d, ".example")+"\tTXT\t") {
				t.Errorf("%s: no TXT record of %s in the zone", m.Name, d)
			}
		}
		if n := len(c.TrustedSealers); n != 1+2*2 {
			t.Errorf("trusted sealers %v: want list.example and one list per ARC message", c.TrustedSealers)
		}
	})
	t.Run("authmilter", func(t *testing.T) {
		t.Parallel()
		c := checkVerdicts(t, benchmail.Options{Seed: 7, PerClass: 1, Sizes: benchmail.Sizes[:1], Sealer: benchmail.SealOwn})
		m := c.Find(benchmail.ARC2Hop, benchmail.Sizes[0].Name)
		if bytes.Contains(m.Data, []byte("h=from : to")) {
			t.Error("arc-2hop sealed as dkimpy writes it with Sealer: SealOwn")
		}
	})
}

// TestDkimpyMissing: without dkimpy, generating ARC classes fails and says
// what to install and how to do without; other classes need no python.
func TestDkimpyMissing(t *testing.T) {
	t.Parallel()
	opts := benchmail.Options{Seed: 3, PerClass: 1, Sizes: benchmail.Sizes[:1], Classes: []benchmail.Class{benchmail.ARC1Hop}, Python: "/nonexistent/python3"}
	_, err := benchmail.Generate(opts)
	if err == nil || !strings.Contains(err.Error(), "python3-dkim") || !strings.Contains(err.Error(), "--arc-sealer authmilter") {
		t.Fatalf("err = %v, want one naming python3-dkim and --arc-sealer authmilter", err)
	}
	opts.Classes = []benchmail.Class{benchmail.SPFOnly}
	if _, err := benchmail.Generate(opts); err != nil {
		t.Fatalf("spf-only needs no dkimpy: %v", err)
	}
	opts.Sealer = "openarc"
	if _, err := benchmail.Generate(opts); err == nil || !strings.Contains(err.Error(), "openarc") {
		t.Fatalf("unknown sealer: err = %v", err)
	}
}

func checkVerdicts(t *testing.T, opts benchmail.Options) *benchmail.Corpus {
	t.Helper()
	c, err := benchmail.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	pol := engine.DefaultPolicy()
	pol.TrustedSealers = c.TrustedSealers
	e := &engine.Engine{Resolver: c.Resolver(), AuthservID: benchmail.AuthservID, Policy: pol, Timeout: 5 * time.Second}
	for _, m := range c.Messages {
		t.Run(m.Name, func(t *testing.T) {
			env := m.Envelope
			msg := e.Begin(context.Background(), engine.Envelope{
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
				dkim = string(s.Status)
			}
			got := benchmail.Expect{SPF: string(v.SPF.Status), DKIM: dkim, DMARC: string(v.DMARC.Status), ARC: string(v.ARC.Status), Action: string(v.Action)}
			if got != m.Expect {
				t.Errorf("got %+v, want %+v\n%s", got, m.Expect, v.AuthResults)
			}
		})
	}
	return c
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
