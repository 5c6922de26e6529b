package arc

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/verify"
)

// benchMessage is testMessage's header with a body of about 20 KB.
func benchMessage() string {
	var b strings.Builder
	b.WriteString(strings.SplitAfter(testMessage, "\r\n\r\n")[0])
	line := "Lorem ipsum dolor sit amet,  consectetur adipiscing elit, sed do eiusmod \r\n"
	for b.Len() < 20*1024 {
		b.WriteString(line)
	}
	return b.String()
}

func benchSealers(b *testing.B, r *dnstest.Resolver) map[string]*Sealer {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	r.TXT["rsa._domainkey.rsa.example"] = []string{"v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(spki)}
	pub, ek, _ := ed25519.GenerateKey(rand.Reader)
	r.TXT["ed._domainkey.ed.example"] = []string{"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}
	return map[string]*Sealer{
		"RSA2048": {Domain: "rsa.example", Selector: "rsa", Key: crypto.Signer(rk), Now: testNow},
		"Ed25519": {Domain: "ed.example", Selector: "ed", Key: ek, Now: testNow},
	}
}

// BenchmarkValidate2Hop validates a two-hop chain over a 20 KB body, the
// header parsed once and the body streamed in 64 KiB chunks as a milter
// gets it.
func BenchmarkValidate2Hop(b *testing.B) {
	r := newResolver()
	sealers := benchSealers(b, r)
	for _, name := range []string{"RSA2048", "Ed25519"} {
		s := sealers[name]
		msg := mustSeal(b, r, s, mustSeal(b, r, s, benchMessage()))
		header, body := splitMessage(b, msg)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				v := NewValidator(context.Background(), r, header, nil)
				v.Write(body)
				if res := v.Close(); res.Status != verify.StatusPass {
					b.Fatal(res.Reason)
				}
			}
		})
	}
}

// BenchmarkSeal measures Seal alone (the body hash comes from validation).
func BenchmarkSeal(b *testing.B) {
	r := newResolver()
	sealers := benchSealers(b, r)
	msg := benchMessage()
	header, body := splitMessage(b, msg)
	v := NewValidator(context.Background(), r, header, nil)
	v.Write(body)
	res := v.Close()
	bh := v.BodyHash()
	for _, name := range []string{"RSA2048", "Ed25519"} {
		s := sealers[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Seal(header, bh, res, "mx.example", "spf=pass smtp.mailfrom=origin.example"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
