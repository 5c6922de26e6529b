package postfixtest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/internal/testsupport/smtptest"
)

// Envelope describes an SMTP connection and one transaction on it.
type Envelope struct {
	// HeloName is sent with EHLO (after XCLIENT, if any). Default
	// "client.example.test".
	HeloName string

	// ClientIP, when set, is passed with XCLIENT ADDR= so that Postfix and
	// the milter see this client address instead of 127.0.0.1. IPv6
	// addresses are sent as "IPV6:2001:db8::1".
	ClientIP string
	// ClientName is XCLIENT NAME=, the verified client hostname. Default
	// "[UNAVAILABLE]" (Postfix then uses "unknown").
	ClientName string
	// ClientPort, if non-zero, is XCLIENT PORT=.
	ClientPort int

	// MailFrom is the envelope sender without angle brackets; "" is the
	// null sender <>. MailParams are appended to MAIL FROM (e.g.
	// "SMTPUTF8", "BODY=8BITMIME").
	MailFrom   string
	MailParams string
	Rcpts      []string
}

// Mail is one transaction in SendSession.
type Mail struct {
	MailFrom   string
	MailParams string
	Rcpts      []string
	Data       []byte
}

// Stages of a transaction, as reported in Result.Stage.
const (
	StageMail = smtptest.StageMail // MAIL FROM was refused
	StageRcpt = smtptest.StageRcpt // every RCPT TO was refused (Code is the last reply)
	StageData = smtptest.StageData // DATA was refused
	StageEOM  = smtptest.StageEOM  // the reply after the final dot (accepted or not)
)

// Result is the outcome of one transaction.
type Result struct {
	Stage string
	Code  int
	// Reply is the reply text without the code, lines joined by "\n",
	// e.g. "5.7.1 test reject".
	Reply string
	// RcptCodes holds the reply code of each RCPT TO, in order.
	RcptCodes []int
}

// QueueID extracts the queue id from a "250 2.0.0 Ok: queued as ID" reply.
func (r Result) QueueID() string {
	const marker = "queued as "
	i := strings.LastIndex(r.Reply, marker)
	if i < 0 {
		return ""
	}
	id := r.Reply[i+len(marker):]
	if j := strings.IndexAny(id, " \n"); j >= 0 {
		id = id[:j]
	}
	return id
}

// Send delivers msg in one transaction on a new connection (with XCLIENT
// when env.ClientIP is set) and returns the code and text of the reply that
// decided it: the final reply after DATA, or the refusal of MAIL, RCPT or
// DATA. err reports connection and protocol failures only.
func (in *Instance) Send(t testing.TB, env Envelope, msg []byte) (code int, reply string, err error) {
	t.Helper()
	rs, err := in.SendSession(t, env, Mail{MailFrom: env.MailFrom, MailParams: env.MailParams, Rcpts: env.Rcpts, Data: msg})
	if err != nil {
		return 0, "", err
	}
	return rs[0].Code, rs[0].Reply, nil
}

// SendSession runs several transactions on ONE SMTP connection, with RSET
// between them. env supplies the connection (HELO, XCLIENT); its MailFrom,
// MailParams and Rcpts are ignored in favour of each Mail's. It returns
// one Result per Mail; err reports connection and protocol failures (the
// results so far are returned with it).
func (in *Instance) SendSession(t testing.TB, env Envelope, mails ...Mail) ([]Result, error) {
	t.Helper()
	rs, err := in.sendSession(t, env, mails)
	if err != nil {
		if p := in.problems(); p != "" {
			err = fmt.Errorf("%w\nPostfix log reports:\n%s", err, p)
		}
	}
	return rs, err
}

func (in *Instance) sendSession(t testing.TB, env Envelope, mails []Mail) ([]Result, error) {
	t.Helper()
	c, err := smtptest.Dial(in.Addr(), in.opts.SMTPTimeout)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = c.Close()
		t.Logf("postfixtest: SMTP session with %s:\n%s", in.Addr(), c.Transcript())
	}()
	if err := greet(c, env); err != nil {
		return nil, err
	}
	ms := make([]smtptest.Mail, len(mails))
	for i, m := range mails {
		ms[i] = smtptest.Mail{MailFrom: m.MailFrom, MailParams: m.MailParams, Rcpts: m.Rcpts, Data: m.Data}
	}
	rs, err := c.Session(ms...)
	var results []Result
	for i, r := range rs {
		res := Result{Stage: r.Stage, Code: r.Code, Reply: r.Reply, RcptCodes: r.RcptCodes}
		if r.Stage == StageRcpt && len(mails[i].Rcpts) == 0 {
			res.Code, res.Reply = 0, "no recipients given"
		}
		results = append(results, res)
	}
	return results, err
}

func greet(c *smtptest.Client, env Envelope) error {
	code, msg, err := c.Reply()
	if err != nil {
		return fmt.Errorf("reading banner: %w", err)
	}
	if code != 220 {
		return fmt.Errorf("banner: %d %s", code, msg)
	}
	helo := env.HeloName
	if helo == "" {
		helo = "client.example.test"
	}
	if env.ClientIP != "" {
		// Postfix takes XCLIENT before any EHLO, so that the milter's first
		// session (for 127.0.0.1) sees no HELO at all.
		name := env.ClientName
		if name == "" {
			name = "[UNAVAILABLE]"
		}
		addr := env.ClientIP
		if strings.Contains(addr, ":") && !strings.HasPrefix(strings.ToUpper(addr), "IPV6:") {
			addr = "IPV6:" + addr // Postfix's form for IPv6 client addresses
		}
		args := []string{"ADDR=" + smtptest.XText(addr), "NAME=" + smtptest.XText(name)}
		if env.ClientPort != 0 {
			args = append(args, "PORT="+strconv.Itoa(env.ClientPort))
		}
		args = append(args, "HELO="+smtptest.XText(helo))
		// XCLIENT restarts the session: Postfix answers with a new 220
		// greeting, and the milter is reconnected with the new client.
		if err := c.XClient(args...); err != nil {
			return fmt.Errorf("%w (is 127.0.0.1 in smtpd_authorized_xclient_hosts?)", err)
		}
	}
	_, _, err = c.Cmd(250, "EHLO %s", helo)
	return err
}
