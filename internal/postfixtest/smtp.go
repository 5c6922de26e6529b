package postfixtest

import (
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"
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
	StageMail = "MAIL" // MAIL FROM was refused
	StageRcpt = "RCPT" // every RCPT TO was refused (Code is the last reply)
	StageData = "DATA" // DATA was refused
	StageEOM  = "EOM"  // the reply after the final dot (accepted or not)
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
	c, err := dialSMTP(in.Addr(), in.opts.SMTPTimeout)
	if err != nil {
		return nil, err
	}
	defer func() {
		c.close()
		t.Logf("postfixtest: SMTP session with %s:\n%s", in.Addr(), c.transcript.String())
	}()
	if err := c.greet(env); err != nil {
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

type smtpClient struct {
	timeout    time.Duration
	conn       net.Conn
	tp         *textproto.Conn
	transcript strings.Builder
}

func dialSMTP(addr string, timeout time.Duration) (*smtpClient, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &smtpClient{timeout: timeout, conn: conn, tp: textproto.NewConn(conn)}, nil
}

func (c *smtpClient) close() { _ = c.tp.Close() }

func (c *smtpClient) readReply() (int, string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	code, msg, err := c.tp.ReadResponse(0)
	if err != nil {
		fmt.Fprintf(&c.transcript, "S: <error %v>\n", err)
		return 0, "", err
	}
	for _, l := range strings.Split(msg, "\n") {
		fmt.Fprintf(&c.transcript, "S: %d %s\n", code, l)
	}
	return code, msg, nil
}

// cmd sends a command and reads the reply. If want is non-zero and the code
// differs, it returns an error.
func (c *smtpClient) cmd(want int, format string, args ...any) (int, string, error) {
	line := fmt.Sprintf(format, args...)
	fmt.Fprintf(&c.transcript, "C: %s\n", line)
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	if err := c.tp.PrintfLine("%s", line); err != nil {
		return 0, "", err
	}
	code, msg, err := c.readReply()
	if err != nil {
		return code, msg, err
	}
	if want != 0 && code != want {
		return code, msg, fmt.Errorf("%s: got %d %s, want %d", line, code, msg, want)
	}
	return code, msg, nil
}

func (c *smtpClient) greet(env Envelope) error {
	code, msg, err := c.readReply()
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
		args := []string{"ADDR=" + xtext(addr), "NAME=" + xtext(name)}
		if env.ClientPort != 0 {
			args = append(args, "PORT="+strconv.Itoa(env.ClientPort))
		}
		args = append(args, "HELO="+xtext(helo))
		// XCLIENT restarts the session: Postfix answers with a new 220
		// greeting, and the milter is reconnected with the new client.
		if _, _, err := c.cmd(220, "XCLIENT %s", strings.Join(args, " ")); err != nil {
			return fmt.Errorf("%w (is 127.0.0.1 in smtpd_authorized_xclient_hosts?)", err)
		}
	}
	_, _, err = c.cmd(250, "EHLO %s", helo)
	return err
}

// xtext encodes an XCLIENT attribute value (RFC 3461 xtext).
func xtext(s string) string {
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

func (c *smtpClient) transaction(m Mail) (Result, error) {
	from := "MAIL FROM:<" + m.MailFrom + ">"
	if m.MailParams != "" {
		from += " " + m.MailParams
	}
	code, msg, err := c.cmd(0, "%s", from)
	if err != nil {
		return Result{}, err
	}
	if code != 250 {
		return Result{Stage: StageMail, Code: code, Reply: msg}, nil
	}
	r := Result{}
	accepted := 0
	for _, rcpt := range m.Rcpts {
		code, msg, err = c.cmd(0, "RCPT TO:<%s>", rcpt)
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
		if len(m.Rcpts) == 0 {
			r.Code, r.Reply = 0, "no recipients given"
		}
		return r, nil
	}
	code, msg, err = c.cmd(0, "DATA")
	if err != nil {
		return Result{}, err
	}
	if code != 354 {
		r.Stage, r.Code, r.Reply = StageData, code, msg
		return r, nil
	}
	fmt.Fprintf(&c.transcript, "C: <%d bytes of message>\nC: .\n", len(m.Data))
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	w := c.tp.DotWriter() // CRLF line ends, dot-stuffing, final "."
	if _, err := w.Write(m.Data); err != nil {
		return Result{}, err
	}
	if err := w.Close(); err != nil {
		return Result{}, err
	}
	code, msg, err = c.readReply()
	if err != nil {
		return Result{}, err
	}
	r.Stage, r.Code, r.Reply = StageEOM, code, msg
	return r, nil
}
