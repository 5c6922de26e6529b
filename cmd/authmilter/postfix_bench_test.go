package main

import (
	"testing"

	"github.com/authmilter/authmilter/internal/testsupport/postfixtest"
)

// BenchmarkPostfixTransaction: the wall time of one SMTP transaction (a
// DKIM-signed message from a client that SPF authorises, accepted, DMARC
// pass, sealed with Ed25519) through a private Postfix on loopback, up to
// its "250 queued", with authmilter as smtpd_milters and, for the
// baseline in the same run, with no milter. What authmilter adds to a
// message's SMTP time is the difference; it includes the milter
// protocol's round trips and any wait Postfix's Nagle-on milter socket
// causes (see milter/quickack_linux.go), which milterload imitates but only
// a real Postfix proves. Needs Postfix and root, like the end-to-end
// tests:
//
//	go test -run '^$' -bench PostfixTransaction -benchtime 200x ./cmd/authmilter
func BenchmarkPostfixTransaction(b *testing.B) {
	env := postfixtest.Envelope{HeloName: "mail.example.com", ClientIP: "192.0.2.10", ClientName: "mail.example.com",
		MailFrom: "alice@example.com", Rcpts: []string{"bob@example.test"}}
	for _, withMilter := range []bool{false, true} {
		name := "no-milter"
		if withMilter {
			name = "authmilter"
		}
		b.Run(name, func(b *testing.B) {
			x := newE2E(b)
			opts := postfixtest.Options{MilterDefaultAction: "tempfail"}
			if withMilter {
				x.start(b, "")
				opts.Milter = "inet:" + x.addr
			}
			pf := postfixtest.Start(b, opts)
			msg := x.sign(b, mail("example.com", "bench", ""))
			for b.Loop() {
				code, reply, err := pf.Send(b, env, msg)
				if err != nil || code != 250 {
					b.Fatalf("send: %d %s %v", code, reply, err)
				}
			}
		})
	}
}
