package engine

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/dkimsign"
	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/dkim"
)

// TestEngineSigns: authenticated and internal mail whose From domain has
// keys is signed, before an ARC seal that covers the signature (both from
// one body hash); judged mail and mail from sources not configured are not.
func TestEngineSigns(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	table := dkimsign.NewTable(map[string][]dkimsign.Key{
		"example.com": {{Domain: "example.com", Selector: "sel", Signer: w.dkimKey}},
	})
	signing := &Signing{Keys: table, Authenticated: true, Internal: true}
	e := w.engine(func(e *Engine) {
		e.Signing = signing
		e.Sealer = &arc.Sealer{Domain: "forwarder.test", Selector: "seal", Key: w.sealKey}
		e.Policy.SealInternal = true
		e.Policy.InternalNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	msg := msgText("example.com", "", "Hello,  world. \r\n\r\n")
	submission := env("203.0.113.5", "laptop", "alice@example.com")
	submission.AuthUser = "alice"

	for name, tc := range map[string]struct {
		env      Envelope
		engine   *Engine
		msg      string
		wantSign bool
		wantSkip string
	}{
		"authenticated":         {submission, e, msg, true, ""},
		"internal network":      {env("10.1.2.3", "app", "app@example.com"), e, msg, true, ""},
		"judged (from outside)": {env("192.0.2.10", "helo.example.com", "alice@example.com"), e, msg, false, ""},
		"domain without keys":   {submission, e, msgText("relaxed.example", "", "Hi.\r\n"), false, "no key for relaxed.example"},
		"internal not a source": {env("10.1.2.3", "app", "app@example.com"), w.engine(func(x *Engine) { *x = *e; x.Signing = &Signing{Keys: table, Authenticated: true} }), msg, false, "source not in dkim.sign.sources"},
		"two From fields":       {submission, e, "From: x@example.com\r\n" + msg, false, "2 From fields"},
	} {
		t.Run(name, func(t *testing.T) {
			v, fields, body := run(t, tc.engine, tc.env, tc.msg)
			if got := len(v.Signed) > 0; got != tc.wantSign || v.SignErr != nil {
				t.Fatalf("signed %v (%v), want %v", got, v.SignErr, tc.wantSign)
			}
			if v.SignSkipped != tc.wantSkip {
				t.Errorf("SignSkipped %q, want %q", v.SignSkipped, tc.wantSkip)
			}
			if !tc.wantSign {
				for _, f := range v.Insert {
					if strings.EqualFold(f.Name, "DKIM-Signature") {
						t.Fatal("a DKIM-Signature was inserted")
					}
				}
				return
			}
			out := ApplyHeader(fields, v)
			var names []string
			for _, f := range out[:4] {
				names = append(names, f.Name)
			}
			if got := strings.Join(names, ","); got != "ARC-Seal,ARC-Message-Signature,ARC-Authentication-Results,DKIM-Signature" {
				t.Fatalf("top fields %s", got)
			}
			var m bytes.Buffer
			for _, f := range out {
				m.Write(f.Raw)
			}
			m.WriteString("\r\n" + body)
			sigs, err := dkim.Verify(context.Background(), w.dns, bytes.NewReader(m.Bytes()), nil)
			if err != nil || len(sigs) != 1 || sigs[0].Status != verify.StatusPass {
				t.Fatalf("DKIM: %+v %v", sigs, err)
			}
			res, err := arc.Validate(context.Background(), w.dns, bytes.NewReader(m.Bytes()), nil)
			if err != nil || res.Status != verify.StatusPass {
				t.Fatalf("ARC: %+v %v", res, err)
			}
		})
	}
}
