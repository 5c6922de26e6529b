package dkimsign

import (
	"bufio"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/internal/message"
)

// benchMessage is a message of about size bytes: the usual header and a
// plain-text body.
func benchMessage(size int) ([]message.Field, []byte) {
	hdr := "From: Alice <alice@example.com>\r\nTo: Bob <bob@example.net>\r\nSubject: benchmark\r\n" +
		"Date: Sat, 05 Dec 2026 12:00:00 +0000\r\nMessage-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n"
	fields, _ := message.ReadHeader(bufio.NewReader(strings.NewReader(hdr)), message.Limits{})
	line := "The quick brown fox jumps over the lazy dog, again and again.\r\n"
	body := strings.Repeat(line, max(size-len(hdr), len(line))/len(line))
	return fields, []byte(body)
}

// benchSign measures what signing costs per message: the relaxed body
// hash and Sign (header canonicalisation, the signature, the folded field).
func benchSign(b *testing.B, key crypto.Signer, size int) {
	fields, body := benchMessage(size)
	keys := []Key{{Domain: "example.com", Selector: "sel", Signer: key}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		h := NewBodyHasher()
		h.Write(body)
		if _, err := Sign(fields, h.Sum(), keys, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// benchFloor is the crypto floor of the same message: SHA-256 over the
// body and over the header data, and one signature.
func benchFloor(b *testing.B, key crypto.Signer, size int) {
	_, body := benchMessage(size)
	hdr := make([]byte, 1200) // about the canonical header and DKIM-Signature
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		sha256.Sum256(body)
		d := sha256.Sum256(hdr)
		var opts crypto.SignerOpts = crypto.SHA256
		if _, ok := key.(ed25519.PrivateKey); ok {
			opts = crypto.Hash(0)
		}
		if _, err := key.Sign(rand.Reader, d[:], opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	_, ek, _ := ed25519.GenerateKey(rand.Reader)
	b.Run("rsa2048-4KB", func(b *testing.B) { benchSign(b, rk, 4<<10) })
	b.Run("rsa2048-4KB-floor", func(b *testing.B) { benchFloor(b, rk, 4<<10) })
	b.Run("ed25519-20KB", func(b *testing.B) { benchSign(b, ek, 20<<10) })
	b.Run("ed25519-20KB-floor", func(b *testing.B) { benchFloor(b, ek, 20<<10) })
}

// BenchmarkSignVsFloor alternates a signature and its crypto floor on every
// iteration, so that both see the same machine load (a shared machine
// drifts more between two benchmarks than within one), and reports both
// and their ratio.
func BenchmarkSignVsFloor(b *testing.B) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	_, ek, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		size int
	}{{"rsa2048-4KB", rk, 4 << 10}, {"rsa2048-20KB", rk, 20 << 10}, {"ed25519-20KB", ek, 20 << 10}} {
		b.Run(tc.name, func(b *testing.B) {
			fields, body := benchMessage(tc.size)
			keys := []Key{{Domain: "example.com", Selector: "sel", Signer: tc.key}}
			hdr := make([]byte, 1200)
			prepared := &Options{} // as the milter's: lists compiled once
			if err := prepared.Prepare(); err != nil {
				b.Fatal(err)
			}
			var opts crypto.SignerOpts = crypto.SHA256
			if _, ok := tc.key.(ed25519.PrivateKey); ok {
				opts = crypto.Hash(0)
			}
			var sign, floor time.Duration
			for b.Loop() {
				t0 := time.Now()
				h := NewBodyHasher()
				h.Write(body)
				if _, err := Sign(fields, h.Sum(), keys, prepared); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				sha256.Sum256(body)
				d := sha256.Sum256(hdr)
				if _, err := tc.key.Sign(rand.Reader, d[:], opts); err != nil {
					b.Fatal(err)
				}
				sign += t1.Sub(t0)
				floor += time.Since(t1)
			}
			b.ReportMetric(float64(sign.Nanoseconds())/float64(b.N), "sign-ns/msg")
			b.ReportMetric(float64(floor.Nanoseconds())/float64(b.N), "floor-ns/msg")
			b.ReportMetric(float64(sign)/float64(floor), "sign/floor")
		})
	}
}
