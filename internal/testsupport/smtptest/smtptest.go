// Package smtptest is the small SMTP client shared by the MTA test
// harnesses (postfixtest, sendmailtest): it dials the MTA, runs commands
// with a per-command timeout, sends transactions and keeps a transcript of
// the session for the test log. It is for tests, not for delivering mail.
package smtptest

import (
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"time"
)

// DialTimeout bounds the TCP connect of Dial.
const DialTimeout = 10 * time.Second

// Stages of a transaction, as reported in Result.Stage.
const (
	StageMail = "MAIL" // MAIL FROM was refused
	StageRcpt = "RCPT" // every RCPT TO was refused (Code is the last reply)
	StageData = "DATA" // DATA was refused
	StageEOM  = "EOM"  // the reply after the final dot (accepted or not)
)

// Mail is one transaction.
type Mail struct {
	MailFrom string // without angle brackets; "" is the null sender <>
	// MailParams are appended to MAIL FROM (e.g. "SMTPUTF8").
	MailParams string
	Rcpts      []string
	Data       []byte
}

// Result is the outcome of one transaction: the reply that decided it (the
// one after the final dot, or the refusal of MAIL, RCPT or DATA).
type Result struct {
	Stage string
	Code  int
	// Reply is the reply text without the code, lines joined by "\n".
	Reply string
	// RcptCodes holds the reply code of each RCPT TO, in order (nil when
	// MAIL FROM was refused).
	RcptCodes []int
}

// Client is one SMTP connection.
type Client struct {
	timeout    time.Duration
	conn       net.Conn
	tp         *textproto.Conn
	transcript strings.Builder
}

// Dial connects to addr; timeout bounds each later command/reply exchange.
func Dial(addr string, timeout time.Duration) (*Client, error) {
	conn, err := net.DialTimeout("tcp", addr, DialTimeout)
	if err != nil {
		return nil, err
	}
	return &Client{timeout: timeout, conn: conn, tp: textproto.NewConn(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.tp.Close() }

// Transcript returns the session so far, one "C: " or "S: " line each.
func (c *Client) Transcript() string { return c.transcript.String() }

// Reply reads one (possibly multi-line) reply, lines joined by "\n". On
// error it returns what textproto.ReadResponse returned.
func (c *Client) Reply() (int, string, error) {
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

// Cmd sends a command and reads the reply. If want is non-zero and the
// code differs, it returns an error (with the code and text).
func (c *Client) Cmd(want int, format string, args ...any) (int, string, error) {
	line := fmt.Sprintf(format, args...)
	fmt.Fprintf(&c.transcript, "C: %s\n", line)
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	if err := c.tp.PrintfLine("%s", line); err != nil {
		return 0, "", err
	}
	code, msg, err := c.Reply()
	if err == nil && want != 0 && code != want {
		err = fmt.Errorf("%s: got %d %s, want %d", line, code, msg, want)
	}
	return code, msg, err
}

// XClient sends XCLIENT with the given attributes (already xtext-encoded,
// see XText) and expects the new 220 greeting that restarts the session.
func (c *Client) XClient(attrs ...string) error {
	_, _, err := c.Cmd(220, "XCLIENT %s", strings.Join(attrs, " "))
	return err
}

// XText encodes an XCLIENT attribute value (RFC 3461 xtext).
func XText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < 33 || ch > 126 || ch == '+' || ch == '=' {
			fmt.Fprintf(&b, "+%02X", ch)
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}

// Transaction runs MAIL, RCPT (each), DATA and the message. A refusal is a
// Result, not an error; err reports connection and protocol failures. When
// every RCPT is refused, or m has none, Stage is StageRcpt with the last
// reply read (that of MAIL FROM when there were no recipients).
func (c *Client) Transaction(m Mail) (Result, error) {
	from := "MAIL FROM:<" + m.MailFrom + ">"
	if m.MailParams != "" {
		from += " " + m.MailParams
	}
	code, msg, err := c.Cmd(0, "%s", from)
	if err != nil {
		return Result{}, err
	}
	if code != 250 {
		return Result{Stage: StageMail, Code: code, Reply: msg}, nil
	}
	r := Result{}
	accepted := 0
	for _, rcpt := range m.Rcpts {
		code, msg, err = c.Cmd(0, "RCPT TO:<%s>", rcpt)
		if err != nil {
			return Result{}, err
		}
		r.RcptCodes = append(r.RcptCodes, code)
		if code/100 == 2 {
			accepted++
		}
	}
	if accepted == 0 {
		r.Stage, r.Code, r.Reply = StageRcpt, code, msg
		return r, nil
	}
	if code, msg, err = c.Cmd(0, "DATA"); err != nil {
		return Result{}, err
	}
	if code != 354 {
		r.Stage, r.Code, r.Reply = StageData, code, msg
		return r, nil
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
	if code, msg, err = c.Reply(); err != nil {
		return Result{}, err
	}
	r.Stage, r.Code, r.Reply = StageEOM, code, msg
	return r, nil
}

// Session runs the transactions in order, with RSET between them, then
// sends QUIT (its reply is not checked). The greeting (banner, XCLIENT,
// EHLO) is the caller's. It returns one Result per Mail; err reports
// connection and protocol failures, with the results so far.
func (c *Client) Session(mails ...Mail) ([]Result, error) {
	var results []Result
	for i, m := range mails {
		if i > 0 {
			if _, _, err := c.Cmd(250, "RSET"); err != nil {
				return results, err
			}
		}
		r, err := c.Transaction(m)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	_, _, _ = c.Cmd(221, "QUIT")
	return results, nil
}
