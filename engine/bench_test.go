package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/dmarcreport/reporter"
	"github.com/authmilter/authmilter/dmarcreport/store"
	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/engine"
	"github.com/authmilter/authmilter/internal/dkimkey"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/internal/testsupport/benchmail"
)

// benchCorpus is generated once per test binary (RSA key searches are
// slow), only when a benchmark asks for it.
var benchCorpus = sync.OnceValues(func() (*benchmail.Corpus, error) {
	return benchmail.Generate(benchmail.Options{Seed: 1, PerClass: 1})
})

// benchInput is a message split as the MTA sends it.
type benchInput struct {
	env    engine.Envelope
	fields []message.Field
	chunks [][]byte
	size   int
}

func splitInput(b *testing.B, m *benchmail.Message) benchInput {
	br := bufio.NewReader(bytes.NewReader(m.Data))
	fields, err := message.ReadHeader(br, message.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput{
		env: engine.Envelope{
			ClientIP: netip.MustParseAddr(m.Envelope.ClientIP), ClientName: "unknown",
			HELO: m.Envelope.HELO, MailFrom: m.Envelope.MailFrom, Rcpts: m.Envelope.Rcpts,
		},
		fields: fields,
		size:   len(m.Data),
	}
	// Postfix's chunks: at most 65535 bytes.
	if err := message.BodyCRLF(br, 65535, func(c []byte) error {
		in.chunks = append(in.chunks, bytes.Clone(c))
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	return in
}

// benchEngine returns an engine as the daemon builds it: the resolver of
// dnscache.New (a Cache in front of a Client) asking a local server that
// answers from the corpus zone, answers kept for an hour so that they stay
// warm through the run, and parsed DKIM keys cached across messages.
func benchEngine(b testing.TB, c *benchmail.Corpus, sealer crypto.Signer, selector string) *engine.Engine {
	r, err := dnscache.New(dnscache.Config{Servers: []string{dnstest.Serve(b, c.Resolver())}, MinTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	pol := engine.DefaultPolicy()
	pol.TrustedSealers = []string{benchmail.TrustedSealer}
	e := &engine.Engine{Resolver: r, AuthservID: benchmail.AuthservID, Policy: pol, Timeout: 5 * time.Second, Keys: dkimkey.NewCache(0)}
	if sealer != nil {
		e.Sealer = &arc.Sealer{Domain: benchmail.SealDomain, Selector: selector, Key: sealer}
	}
	return e
}

// evaluate feeds one message through the engine as the milter session
// does and returns its verdict.
func evaluate(e *engine.Engine, in *benchInput) *engine.Verdict {
	m := e.Begin(context.Background(), in.env)
	for _, f := range in.fields {
		m.Header(f)
	}
	m.EndOfHeaders()
	for _, c := range in.chunks {
		m.Body(c)
	}
	return m.End()
}

// BenchmarkMessage evaluates one message per class and size through
// Engine (SPF, DKIM, DMARC, ARC validation, the policy and the header
// fields to add; ARC sealing for the arc-seal-* cases), with the daemon's
// resolver warm (benchEngine; the first message fills the cache), as the
// milter session drives it:
// header fields one by one, the body in 65535-byte chunks. The protocol
// itself is not included (see cmd/milterload for end-to-end figures).
//
// The cases: every corpus class (benchmail.Classes: spf-only, dkim-rsa,
// dkim-ed25519, spf-fail, dmarc-fail, dmarc-quarantine, dmarc-none,
// arc-1hop, arc-2hop; each action is checked once), then arc-seal-rsa
// and arc-seal-ed25519 (arc-2hop, then sealed by us with RSA-2048 or
// Ed25519).
func BenchmarkMessage(b *testing.B) {
	c, err := benchCorpus()
	if err != nil {
		b.Fatal(err)
	}
	type benchCase struct {
		name     string
		class    benchmail.Class
		key      crypto.Signer
		selector string
	}
	var cases []benchCase
	for _, class := range benchmail.Classes {
		cases = append(cases, benchCase{string(class), class, nil, ""})
	}
	cases = append(cases,
		benchCase{"arc-seal-rsa", benchmail.ARC2Hop, c.SealRSA, benchmail.SealSelectorRSA},
		benchCase{"arc-seal-ed25519", benchmail.ARC2Hop, c.SealEd25519, benchmail.SealSelectorEd})
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			e := benchEngine(b, c, tc.key, tc.selector)
			for _, size := range benchmail.Sizes {
				m := c.Find(tc.class, size.Name)
				in := splitInput(b, m)
				b.Run(size.Name, func(b *testing.B) {
					// Check once that the case is what it claims.
					v := evaluate(e, &in)
					if string(v.Action) != m.Expect.Action || (tc.key != nil) != v.Sealed {
						b.Fatalf("%s: action %s sealed %v (%v), want %s", m.Name, v.Action, v.Sealed, v.SealErr, m.Expect.Action)
					}
					b.ReportAllocs()
					b.SetBytes(int64(in.size))
					for b.Loop() {
						evaluate(e, &in)
					}
				})
			}
		})
	}
}

// BenchmarkCryptoFloor is the baseline the message figures are read
// against, measured in the same run: one RSA-2048 verification and
// signature, one Ed25519 verification and signature (PKCS #1 v1.5 and
// RFC 8032 over a SHA-256 digest, as DKIM and ARC use them), and SHA-256
// per KiB.
func BenchmarkCryptoFloor(b *testing.B) {
	c, err := benchCorpus()
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("header hash"))
	rk, ek := c.SealRSA, c.SealEd25519
	rsig, _ := rsa.SignPKCS1v15(nil, rk, crypto.SHA256, digest[:])
	esig := ed25519.Sign(ek, digest[:])
	epub := ek.Public().(ed25519.PublicKey)
	b.Run("rsa2048-verify", func(b *testing.B) {
		for b.Loop() {
			if err := rsa.VerifyPKCS1v15(&rk.PublicKey, crypto.SHA256, digest[:], rsig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rsa2048-sign", func(b *testing.B) {
		for b.Loop() {
			rsa.SignPKCS1v15(nil, rk, crypto.SHA256, digest[:])
		}
	})
	b.Run("ed25519-verify", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(epub, digest[:], esig) {
				b.Fatal("ed25519 verify failed")
			}
		}
	})
	b.Run("ed25519-sign", func(b *testing.B) {
		for b.Loop() {
			ed25519.Sign(ek, digest[:])
		}
	})
	b.Run("sha256-1KiB", func(b *testing.B) {
		buf := make([]byte, 1024)
		b.SetBytes(1024)
		for b.Loop() {
			sha256.Sum256(buf)
		}
	})
}

// repeatReader yields n copies of block: a large body that is never in
// memory whole.
type repeatReader struct {
	block []byte
	n     int
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := copy(p, r.block[r.off:])
	r.off += k
	if r.off == len(r.block) {
		r.off, r.n = 0, r.n-1
	}
	return k, nil
}

// headerOnly keeps what is written up to the end of the header section.
type headerOnly struct {
	buf  bytes.Buffer
	done bool
}

func (w *headerOnly) Write(p []byte) (int, error) {
	if !w.done {
		w.buf.Write(p)
		if i := bytes.Index(w.buf.Bytes(), []byte("\r\n\r\n")); i >= 0 {
			w.buf.Truncate(i + 4)
			w.done = true
		}
	}
	return len(p), nil
}

// bigMessage is a dkim-rsa message (header of the corpus, signed) whose
// body is blocks copies of a 64 KiB block of text, with its fields.
func bigMessage(b testing.TB, c *benchmail.Corpus, blocks int) ([]message.Field, []byte) {
	m := c.Find(benchmail.DKIMRSA, "20KB")
	hdr, _, _ := strings.Cut(string(m.Data), "\r\n\r\n")
	// Drop the corpus signature: the message is signed again over the new
	// body.
	var lines []string
	fields, err := message.ReadHeader(bufio.NewReader(strings.NewReader(hdr+"\r\n\r\n")), message.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range fields {
		if !strings.EqualFold(f.Name, "DKIM-Signature") && !strings.EqualFold(f.Name, "Content-Type") {
			lines = append(lines, string(f.Raw))
		}
	}
	lines = append(lines, "Content-Type: text/plain; charset=utf-8\r\n")
	block := bytes.Repeat([]byte("All work and no play makes a benchmark a dull message body.  \r\n"), 1024)
	var w headerOnly
	src := io.MultiReader(strings.NewReader(strings.Join(lines, "")+"\r\n"), &repeatReader{block: block, n: blocks})
	if err := c.Sign(benchmail.DKIMRSA, &w, src); err != nil {
		b.Fatal(err)
	}
	fields, err = message.ReadHeader(bufio.NewReader(&w.buf), message.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	return fields, block
}

// BenchmarkBodySize shows that the memory a message costs does not grow
// with its body: a dkim-rsa message (DKIM, SPF, DMARC and ARC validation)
// with a body of 200 KB and of 20 MB, streamed in 64 KiB chunks (a reused
// buffer, as the milter session reads them). Compare B/op and allocs/op:
// allocations grow with the body (go-msgauth's canonicalizer copies each
// chunk, garbage at once) but the live heap does not (nothing is kept);
// live-heap-KB is the whole test binary's live heap half way through the
// body (corpus and keys included): the same for both sizes.
func BenchmarkBodySize(b *testing.B) {
	c, err := benchCorpus()
	if err != nil {
		b.Fatal(err)
	}
	e := benchEngine(b, c, nil, "")
	env := engine.Envelope{ClientIP: netip.MustParseAddr("192.0.2.20"), HELO: "mail.rsa.example", MailFrom: "news@rsa.example", Rcpts: []string{"bob@inbound.example"}}
	for _, sz := range []struct {
		name   string
		blocks int
	}{{"200KB", 3}, {"20MB", 320}} {
		fields, block := bigMessage(b, c, sz.blocks)
		b.Run(sz.name, func(b *testing.B) {
			live := liveHeapMidBody(b, e, env, fields, block, sz.blocks)
			b.ReportAllocs()
			b.SetBytes(int64(len(block) * sz.blocks))
			for b.Loop() {
				m := e.Begin(context.Background(), env)
				for _, f := range fields {
					m.Header(f)
				}
				m.EndOfHeaders()
				for range sz.blocks {
					m.Body(block)
				}
				if v := m.End(); v.DKIM[0].Status != "pass" {
					b.Fatalf("dkim %s", v.DKIM[0].Status)
				}
			}
			b.ReportMetric(float64(live)/1024, "live-heap-KB")
		})
	}
}

// liveHeapMidBody evaluates one message and returns the live heap (after a
// collection) half way through its body: what a session in the middle of
// a large message holds.
func liveHeapMidBody(b *testing.B, e *engine.Engine, env engine.Envelope, fields []message.Field, block []byte, blocks int) uint64 {
	var ms runtime.MemStats
	m := e.Begin(context.Background(), env)
	for _, f := range fields {
		m.Header(f)
	}
	m.EndOfHeaders()
	for i := range blocks {
		m.Body(block)
		if i == blocks/2 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
		}
	}
	if v := m.End(); v.DKIM[0].Status != "pass" {
		b.Fatalf("dkim %s", v.DKIM[0].Status)
	}
	return ms.HeapAlloc
}

// BenchmarkReporting is the cost of DMARC aggregate reporting: the same
// message (class dkim-rsa, which has a DMARC record, so every message is
// recorded) with reporting off and with a Recorder writing to SQLite, at
// 1 and 8 concurrent sessions. cpu-µs/msg is the process's CPU time (user
// + system, getrusage) per message, the Recorder's and SQLite's included;
// compare the two rows of one session count.
//
//	go test -run '^$' -bench Reporting -benchtime 3s ./engine
func BenchmarkReporting(b *testing.B) {
	c, err := benchCorpus()
	if err != nil {
		b.Fatal(err)
	}
	m := c.Find(benchmail.DKIMRSA, benchmail.Sizes[0].Name)
	in := splitInput(b, m)
	for _, sessions := range []int{1, 8} {
		for _, mode := range []string{"off", "sqlite"} {
			b.Run(fmt.Sprintf("sessions=%d/%s", sessions, mode), func(b *testing.B) {
				e := benchEngine(b, c, nil, "")
				var rec *reporter.Recorder
				if mode == "sqlite" {
					st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "r.db"))
					if err != nil {
						b.Fatal(err)
					}
					defer st.Close()
					rec = reporter.NewRecorder(st, reporter.RecorderOptions{})
					ctx, cancel := context.WithCancel(context.Background())
					done := make(chan struct{})
					go func() { rec.Run(ctx); close(done) }()
					defer func() { cancel(); <-done }()
					e.Reports = &engine.Reporting{Record: rec.Record}
				}
				if v := evaluate(e, &in); v.DMARC == nil || v.DMARC.Record == nil {
					b.Fatalf("%s has no DMARC record: every message would go unrecorded", m.Name)
				}
				var before, after syscall.Rusage
				syscall.Getrusage(syscall.RUSAGE_SELF, &before)
				b.ResetTimer()
				if sessions == 1 {
					for b.Loop() {
						evaluate(e, &in)
					}
				} else {
					b.SetParallelism(max(sessions/runtime.GOMAXPROCS(0), 1))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							evaluate(e, &in)
						}
					})
				}
				b.StopTimer()
				if rec != nil {
					if err := rec.Flush(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				syscall.Getrusage(syscall.RUSAGE_SELF, &after)
				cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
				if rec != nil {
					b.ReportMetric(float64(rec.Dropped()), "dropped")
				}
			})
		}
	}
}
