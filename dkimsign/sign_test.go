//go:debug rsa1024min=0

package dkimsign

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/verify"
)

const testMessage = "From: Alice <alice@example.com>\r\n" +
	"To: Bob <bob@example.net>\r\n" +
	"Subject: Sign  \t me\r\n" +
	"Date: Sat, 05 Dec 2026 12:00:00 +0000\r\n" +
	"Message-ID: <sign@example.com>\r\n" +
	"Received: from a by b; Sat, 05 Dec 2026 12:00:00 +0000\r\n" +
	"\r\n" +
	"Hello Bob,  \r\n" +
	"\r\n" +
	"The lazy dog\t sleeps.\r\n" +
	"\r\n\r\n"

func TestSignVerifies(t *testing.T) {
	rk, ek := rsaKey(t, 2048), edKey(t)
	rsaK := Key{Domain: "example.com", Selector: "rsa", Signer: rk}
	edK := Key{Domain: "example.com", Selector: "ed", Signer: ek}
	for name, keys := range map[string][]Key{"rsa": {rsaK}, "ed25519": {edK}, "both": {rsaK, edK}} {
		t.Run(name, func(t *testing.T) {
			r := resolverFor(t, keys)
			signed, sigs := signString(t, testMessage, keys, nil)
			if len(sigs) != len(keys) {
				t.Fatalf("%d signatures for %d keys", len(sigs), len(keys))
			}
			got := verifyOwn(t, r, signed)
			if len(got) != len(keys) {
				t.Fatalf("verifier saw %d signatures", len(got))
			}
			for i, s := range got {
				if s.Status != verify.StatusPass {
					t.Errorf("signature %d: %s (%s)", i, s.Status, s.Reason)
				}
				if s.Algorithm != keys[i].Algorithm() || s.Selector != keys[i].Selector {
					t.Errorf("signature %d: %+v", i, s)
				}
			}
			// Oversigning: an added copy of a signed field, present or
			// absent before, breaks every signature (RFC 6376 §8.15).
			for what, forged := range map[string]string{
				"second From":     "From: mallory@example.org\r\n" + signed,
				"added Cc":        strings.Replace(signed, "\r\nSubject: Sign", "\r\nCc: eve@example.org\r\nSubject: Sign", 1),
				"altered Subject": strings.Replace(signed, "Sign  \t me", "Signed", 1),
				"altered body":    strings.Replace(signed, "lazy dog", "lazy cat", 1),
			} {
				for i, s := range verifyOwn(t, r, forged) {
					if s.Status != verify.StatusFail {
						t.Errorf("%s: signature %d: %s, want fail", what, i, s.Status)
					}
				}
			}
			// An unsigned field may be added (Received is not signed).
			for i, s := range verifyOwn(t, r, "Received: from c by d; Sat, 05 Dec 2026 12:00:01 +0000\r\n"+signed) {
				if s.Status != verify.StatusPass {
					t.Errorf("added Received: signature %d: %s", i, s.Status)
				}
			}
		})
	}
}

func TestSignatureTags(t *testing.T) {
	k := Key{Domain: "example.com", Selector: "sel", Signer: edKey(t)}
	now := time.Unix(1796500000, 0)
	_, sigs := signString(t, testMessage, []Key{k}, &Options{Expire: 7 * 24 * time.Hour, Now: func() time.Time { return now }})
	raw := string(sigs[0].Field.Raw)
	flat := strings.NewReplacer("\r\n ", " ").Replace(raw)
	for _, want := range []string{"v=1;", "a=ed25519-sha256;", "c=relaxed/relaxed;", "d=example.com;", "s=sel;",
		"t=1796500000;", "x=1797104800;"} {
		if !strings.Contains(flat, " "+want) {
			t.Errorf("missing %q in\n%s", want, raw)
		}
	}
	hdr, _ := message.ReadHeader(bufio.NewReader(strings.NewReader(testMessage)), message.Limits{})
	if want := "h=" + strings.Join(HeaderList(hdr, nil), ":") + ";"; !strings.Contains(strings.ReplaceAll(flat, ": ", ":"), want) {
		t.Errorf("missing %q in\n%s", want, raw)
	}
	if strings.Contains(flat, " l=") || strings.Contains(flat, ";l=") {
		t.Errorf("l= written:\n%s", raw)
	}
	for _, line := range strings.Split(strings.TrimSuffix(raw, "\r\n"), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line of %d columns: %q", len(line), line)
		}
	}
	if !strings.HasPrefix(raw, "DKIM-Signature: v=1;") || !strings.HasSuffix(raw, "\r\n") {
		t.Errorf("field layout:\n%q", raw)
	}
}

func TestHeaderList(t *testing.T) {
	hdr := []message.Field{
		{Name: "From", Raw: []byte("From: a@example.com\r\n")},
		{Name: "To", Raw: []byte("To: b@example.com\r\n")},
		{Name: "To", Raw: []byte("To: c@example.com\r\n")},
		{Name: "X-Custom", Raw: []byte("X-Custom: 1\r\n")},
		{Name: "Received", Raw: []byte("Received: x\r\n")},
	}
	for _, tc := range []struct {
		name string
		opts *Options
		want []string
	}{
		{"custom, no oversigning", &Options{Headers: []string{"From", "To", "X-Custom", "Subject"}, Oversign: []string{}},
			[]string{"From", "To", "To", "X-Custom"}},
		{"oversign", &Options{Headers: []string{"X-Custom"}, Oversign: []string{"From", "To", "Subject"}},
			[]string{"X-Custom", "From", "From", "To", "To", "To", "Subject"}},
		{"From always", &Options{Headers: []string{"To"}, Oversign: []string{}},
			[]string{"From", "To", "To"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := HeaderList(hdr, tc.opts); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			prepared := *tc.opts
			if err := prepared.Prepare(); err != nil {
				t.Fatal(err)
			}
			if got := HeaderList(hdr, &prepared); !slices.Equal(got, tc.want) {
				t.Errorf("prepared: got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	hash := make([]byte, sha256.Size)
	ek := edKey(t)
	small := rsaKey(t, 512)
	for _, tc := range []struct {
		name string
		keys []Key
		opts *Options
		bh   []byte
	}{
		{"short body hash", []Key{{Domain: "example.com", Selector: "s", Signer: ek}}, nil, hash[:4]},
		{"bad domain", []Key{{Domain: "exa mple.com", Selector: "s", Signer: ek}}, nil, hash},
		{"bad selector", []Key{{Domain: "example.com", Selector: "s;x", Signer: ek}}, nil, hash},
		{"no key", []Key{{Domain: "example.com", Selector: "s"}}, nil, hash},
		{"rsa 512", []Key{{Domain: "example.com", Selector: "s", Signer: small}}, nil, hash},
		{"identity elsewhere", []Key{{Domain: "example.com", Selector: "s", Signer: ek, Identity: "a@example.org"}}, nil, hash},
		{"header with colon", []Key{{Domain: "example.com", Selector: "s", Signer: ek}}, &Options{Headers: []string{"From:"}}, hash},
		{"signs itself", []Key{{Domain: "example.com", Selector: "s", Signer: ek}}, &Options{Oversign: []string{"DKIM-Signature"}}, hash},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Sign(nil, tc.bh, tc.keys, tc.opts); !errors.Is(err, ErrSigner) {
				t.Errorf("got %v, want ErrSigner", err)
			}
			if tc.opts != nil {
				if err := tc.opts.Prepare(); !errors.Is(err, ErrSigner) && strings.Contains(tc.name, "header") {
					t.Errorf("Prepare: got %v, want ErrSigner", err)
				}
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	k := Key{Domain: "example.com", Selector: "sel", Signer: edKey(t), Identity: "alice@mail.example.com"}
	signed, sigs := signString(t, testMessage, []Key{k}, nil)
	if !strings.Contains(string(sigs[0].Field.Raw), "i=alice@mail.example.com;") {
		t.Errorf("no i=:\n%s", sigs[0].Field.Raw)
	}
	if got := verifyOwn(t, resolverFor(t, []Key{k}), signed); got[0].Status != verify.StatusPass || got[0].Identifier != "alice@mail.example.com" {
		t.Errorf("%+v", got[0])
	}
}
