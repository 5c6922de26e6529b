package sendmailtest

import (
	"fmt"
	"testing"

	"github.com/authmilter/authmilter/internal/testsupport/smtptest"
)

// Envelope describes one SMTP connection. Sendmail has no XCLIENT: the
// client is whatever address the test connects from (127.0.0.1 or ::1).
type Envelope struct {
	// IPv6 connects to the [::1] listener (Options.IPv6) instead of
	// 127.0.0.1.
	IPv6 bool
	// HeloName is sent with EHLO. Default "client.example.test".
	HeloName string
	// MailFrom and Rcpts are used by Send; SendSession takes each Mail's.
	MailFrom string
	Rcpts    []string
}

// Mail is one transaction.
type Mail struct {
	MailFrom string
	Rcpts    []string
	Data     []byte
}

// Result is the outcome of one transaction: the reply that decided it (the
// one after the final dot, or the refusal of MAIL, RCPT or DATA).
type Result struct {
	Stage string // "MAIL", "RCPT", "DATA" or "EOM"
	Code  int
	Reply string // without the code, lines joined by "\n"
}

// Send delivers msg in one transaction on a new connection.
func (in *Instance) Send(t testing.TB, env Envelope, msg []byte) (Result, error) {
	t.Helper()
	rs, err := in.SendSession(t, env, Mail{MailFrom: env.MailFrom, Rcpts: env.Rcpts, Data: msg})
	if err != nil {
		return Result{}, err
	}
	return rs[0], nil
}

// SendSession runs the transactions on one connection, with RSET between
// them, and returns one Result each. err reports connection and protocol
// failures (with the results so far).
func (in *Instance) SendSession(t testing.TB, env Envelope, mails ...Mail) ([]Result, error) {
	t.Helper()
	addr := in.Addr()
	if env.IPv6 {
		if addr = in.Addr6(); addr == "" {
			return nil, fmt.Errorf("sendmailtest: Envelope.IPv6 without Options.IPv6")
		}
	}
	c, err := smtptest.Dial(addr, in.opts.SMTPTimeout)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = c.Close()
		t.Logf("sendmailtest: SMTP session with %s:\n%s", addr, c.Transcript())
	}()
	if code, msg, err := c.Reply(); err != nil || code != 220 {
		return nil, fmt.Errorf("banner: %d %s %v", code, msg, err)
	}
	helo := env.HeloName
	if helo == "" {
		helo = "client.example.test"
	}
	if _, _, err := c.Cmd(250, "EHLO %s", helo); err != nil {
		return nil, err
	}
	ms := make([]smtptest.Mail, len(mails))
	for i, m := range mails {
		ms[i] = smtptest.Mail{MailFrom: m.MailFrom, Rcpts: m.Rcpts, Data: m.Data}
	}
	rs, err := c.Session(ms...)
	var results []Result
	for _, r := range rs {
		results = append(results, Result{Stage: r.Stage, Code: r.Code, Reply: r.Reply})
	}
	return results, err
}
