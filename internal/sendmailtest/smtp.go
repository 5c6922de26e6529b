package sendmailtest

import (
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"
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
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &client{timeout: in.opts.SMTPTimeout, conn: conn, tp: textproto.NewConn(conn)}
	defer func() {
		_ = c.tp.Close()
		t.Logf("sendmailtest: SMTP session with %s:\n%s", addr, c.transcript.String())
	}()
	if code, msg, err := c.read(); err != nil || code != 220 {
		return nil, fmt.Errorf("banner: %d %s %v", code, msg, err)
	}
	helo := env.HeloName
	if helo == "" {
		helo = "client.example.test"
	}
	if _, _, err := c.cmd(250, "EHLO %s", helo); err != nil {
		return nil, err
	}
	var results []Result
	for i, m := range mails {
		if i > 0 {
			if _, _, err := c.cmd(250, "RSET"); err != nil {
				return results, err
			}
		}
		r, err := c.transaction(m)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	_, _, _ = c.cmd(221, "QUIT")
	return results, nil
}

type client struct {
	timeout    time.Duration
	conn       net.Conn
	tp         *textproto.Conn
	transcript strings.Builder
}

func (c *client) read() (int, string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	code, msg, err := c.tp.ReadResponse(0)
	if err != nil {
		fmt.Fprintf(&c.transcript, "S: <error %v>\n", err)
		return code, msg, err
	}
	for _, l := range strings.Split(msg, "\n") {
		fmt.Fprintf(&c.transcript, "S: %d %s\n", code, l)
	}
	return code, msg, nil
}

func (c *client) cmd(want int, format string, args ...any) (int, string, error) {
	line := fmt.Sprintf(format, args...)
	fmt.Fprintf(&c.transcript, "C: %s\n", line)
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	if err := c.tp.PrintfLine("%s", line); err != nil {
		return 0, "", err
	}
	code, msg, err := c.read()
	if err == nil && want != 0 && code != want {
		err = fmt.Errorf("%s: got %d %s, want %d", line, code, msg, want)
	}
	return code, msg, err
}

func (c *client) transaction(m Mail) (Result, error) {
	code, msg, err := c.cmd(0, "MAIL FROM:<%s>", m.MailFrom)
	if err != nil {
		return Result{}, err
	}
	if code != 250 {
		return Result{Stage: "MAIL", Code: code, Reply: msg}, nil
	}
	accepted := 0
	for _, r := range m.Rcpts {
		code, msg, err = c.cmd(0, "RCPT TO:<%s>", r)
		if err != nil {
			return Result{}, err
		}
		if code/100 == 2 {
			accepted++
		}
	}
	if accepted == 0 {
		return Result{Stage: "RCPT", Code: code, Reply: msg}, nil
	}
	if code, msg, err = c.cmd(0, "DATA"); err != nil {
		return Result{}, err
	}
	if code != 354 {
		return Result{Stage: "DATA", Code: code, Reply: msg}, nil
	}
	fmt.Fprintf(&c.transcript, "C: <%d bytes of message>\nC: .\n", len(m.Data))
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	w := c.tp.DotWriter() // CRLF line ends, dot-stuffing, the final "."
	if _, err := w.Write(m.Data); err != nil {
		return Result{}, err
	}
	if err := w.Close(); err != nil {
		return Result{}, err
	}
	code, msg, err = c.read()
	if err != nil {
		return Result{}, err
	}
	return Result{Stage: "EOM", Code: code, Reply: msg}, nil
}
