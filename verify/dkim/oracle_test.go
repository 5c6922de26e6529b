package dkim

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"github.com/authmilter/authmilter/verify"
)

// go-msgauth, which this package used to wrap, serves as a differential
// oracle: messages signed by its dkim.Sign, then perhaps altered, must get
// the same verdict (pass or not) from Verify and from its dkim.Verify.

// oracleCase is one signed and perhaps altered message.
type oracleCase struct {
	msg, desc string
}

// randomMessage builds a message from seed: header fields with varied
// whitespace and folding, a body with WSP runs, empty lines, trailing
// whitespace and perhaps no final CRLF.
func randomMessage(rng *rand.Rand) string {
	words := []string{"lunch", "Friday", "a", "the", "quick", "fox", "=?utf-8?q?caf=C3=A9?=", "(comment)", "x"}
	wsp := []string{" ", "  ", "\t", " \t ", ""}
	pick := func(l []string) string { return l[rng.IntN(len(l))] }
	phrase := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(pick(wsp[:4]))
			}
			b.WriteString(pick(words))
		}
		return b.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From:%sAlice <alice@example.com>\r\n", pick(wsp))
	fmt.Fprintf(&b, "To: Bob <bob@example.net>%s\r\n", pick(wsp))
	if rng.IntN(2) == 0 {
		fmt.Fprintf(&b, "Subject: %s\r\n\t%s\r\n", phrase(3), phrase(2)) // folded
	} else {
		fmt.Fprintf(&b, "Subject: %s\r\n", phrase(4))
	}
	b.WriteString("Date: Fri, 13 Mar 2026 12:00:00 +0000\r\n")
	if rng.IntN(2) == 0 {
		b.WriteString("Received: from a by b; Fri, 13 Mar 2026 12:00:00 +0000\r\n")
		b.WriteString("Received: from c by d; Fri, 13 Mar 2026 12:00:01 +0000\r\n")
	}
	b.WriteString("\r\n")
	lines := rng.IntN(40)
	for i := 0; i < lines; i++ {
		switch rng.IntN(6) {
		case 0:
			b.WriteString("\r\n")
		case 1:
			fmt.Fprintf(&b, "%s%s%s\r\n", pick(wsp), phrase(rng.IntN(8)), pick(wsp))
		default:
			fmt.Fprintf(&b, "%s\r\n", phrase(1+rng.IntN(12)))
		}
	}
	switch rng.IntN(4) {
	case 0:
		b.WriteString("\r\n\r\n")
	case 1:
		b.WriteString("no final line end" + pick(wsp))
	}
	return b.String()
}

// alter changes a signed message in one of several ways, some of which a
// relaxed signature survives. It returns the message and what was done.
//
// Alterations keep every CRLF whole: a bare CR or LF is not RFC 5322 and
// the verifiers part ways on it (go-msgauth ends lines at LF; this package,
// like dkimpy, takes a bare CR as content, and Verify turns a bare LF into
// CRLF).
func alter(rng *rand.Rand, msg string) (string, string) {
	hdrEnd := strings.Index(msg, "\r\n\r\n") + 4
	header, body := msg[:hdrEnd], msg[hdrEnd:]
	// inside returns a random body position not between a CR and its LF,
	// and one of a byte that is neither.
	inside := func(end int) int {
		for {
			i := rng.IntN(len(body) + end)
			if i == 0 || i == len(body) || body[i-1] != '\r' {
				if end == 1 || body[i] != '\r' && body[i] != '\n' {
					return i
				}
			}
		}
	}
	plain := strings.Trim(body, "\r\n") != ""
	switch rng.IntN(9) {
	case 0:
		return msg, "intact"
	case 1:
		if !plain {
			return msg + "x", "body byte appended"
		}
		i := inside(0)
		return header + body[:i] + string(body[i]^0x20) + body[i+1:], fmt.Sprintf("body byte %d flipped", i)
	case 2:
		i := inside(1)
		return header + body[:i] + " " + body[i:], fmt.Sprintf("SP inserted in body at %d", i)
	case 3:
		i := inside(1)
		return header + body[:i] + "\t" + body[i:], fmt.Sprintf("TAB inserted in body at %d", i)
	case 4:
		return msg + "\r\n\r\n", "empty lines appended"
	case 5:
		return strings.Replace(msg, "Subject:", "SUBJECT:", 1), "Subject name case changed"
	case 6:
		return strings.Replace(msg, "Subject: ", "Subject:  ", 1), "Subject whitespace changed"
	case 7:
		return strings.Replace(msg, "To: Bob", "To: Eve", 1), "To changed"
	default:
		return "Subject: added on top\r\n" + msg, "second Subject added above"
	}
}

// oracleSign signs msg with go-msgauth's signer.
func oracleSign(t testing.TB, msg string, key crypto.Signer, selector string, hc, bc msgauth.Canonicalization) string {
	t.Helper()
	var out bytes.Buffer
	opts := &msgauth.SignOptions{
		Domain:                 "example.com",
		Selector:               selector,
		Signer:                 key,
		HeaderCanonicalization: hc,
		BodyCanonicalization:   bc,
		HeaderKeys:             []string{"From", "To", "Subject", "Date", "Received", "Received", "Subject"},
	}
	if err := msgauth.Sign(&out, strings.NewReader(msg), opts); err != nil {
		t.Fatalf("go-msgauth Sign: %v", err)
	}
	return out.String()
}

// oracleVerdicts verifies msg with both verifiers and reports whether each
// says pass.
func oracleVerdicts(t testing.TB, msg string, records map[string]string) (ours, theirs bool, detail string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sigs, err := Verify(ctx, resolverFor(records), strings.NewReader(msg), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 1 {
		t.Fatalf("%d results", len(sigs))
	}
	lookup := func(name string) ([]string, error) {
		if rec, ok := records[name]; ok {
			return []string{rec}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	verifs, err := msgauth.VerifyWithOptions(strings.NewReader(msg), &msgauth.VerifyOptions{LookupTXT: lookup})
	if err != nil || len(verifs) != 1 {
		t.Fatalf("go-msgauth Verify: %v, %d verifications", err, len(verifs))
	}
	detail = fmt.Sprintf("ours %s (%s), go-msgauth %v", sigs[0].Status, sigs[0].Reason, verifs[0].Err)
	return sigs[0].Status == verify.StatusPass, verifs[0].Err == nil, detail
}

var oracleCanons = [...]struct{ h, b msgauth.Canonicalization }{
	{msgauth.CanonicalizationSimple, msgauth.CanonicalizationSimple},
	{msgauth.CanonicalizationRelaxed, msgauth.CanonicalizationRelaxed},
	{msgauth.CanonicalizationRelaxed, msgauth.CanonicalizationSimple},
	{msgauth.CanonicalizationSimple, msgauth.CanonicalizationRelaxed},
}

// checkOracle signs a random message from seed with go-msgauth (key and
// canonicalisation from seed too), alters it, and compares verdicts.
func checkOracle(t testing.TB, seed uint64) {
	k := testKeys()
	rng := rand.New(rand.NewPCG(seed, seed>>32))
	keys := []struct {
		sel string
		key crypto.Signer
	}{{"rsa", k.rsa2048}, {"ed", k.ed}}
	kk := keys[rng.IntN(len(keys))]
	c := oracleCanons[rng.IntN(len(oracleCanons))]
	records := map[string]string{kk.sel + "._domainkey.example.com": keyRecord(kk.key, "")}
	signed := oracleSign(t, randomMessage(rng), kk.key, kk.sel, c.h, c.b)
	msg, what := alter(rng, signed)
	ours, theirs, detail := oracleVerdicts(t, msg, records)
	if ours != theirs {
		t.Errorf("seed %d (%s, c=%s/%s, %s): %s\n%q", seed, kk.sel, c.h, c.b, what, detail, msg)
	}
	if what == "intact" && !ours {
		t.Errorf("seed %d: intact message does not pass: %s", seed, detail)
	}
}

func TestOracleGoMsgauth(t *testing.T) {
	t.Parallel()
	n := 400
	if testing.Short() {
		n = 50
	}
	for seed := uint64(1); seed <= uint64(n); seed++ {
		checkOracle(t, seed)
	}
}

// FuzzOracleGoMsgauth explores more seeds than TestOracleGoMsgauth.
func FuzzOracleGoMsgauth(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42, 1 << 40} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { checkOracle(t, seed) })
}
