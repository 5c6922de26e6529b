package reporter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPOptions say how reports leave: by SMTP to one relay, the local MTA
// by default.
type SMTPOptions struct {
	// Address is the relay's host:port (default 127.0.0.1:25).
	Address string
	// HelloName is the EHLO name (default "localhost").
	HelloName string
	// MailFrom is the envelope sender; empty means the null reverse-path.
	MailFrom string
	// StartTLS requires STARTTLS before MAIL FROM, verified with TLS (nil:
	// the system roots and the Address's host name).
	StartTLS bool
	TLS      *tls.Config
	// Username and Password enable AUTH PLAIN (only over TLS, or to a
	// loopback relay).
	Username, Password string
	// Timeout bounds each command and the submission (default 60s).
	Timeout time.Duration
}

// ErrRejected wraps an SMTP refusal of the report (5xx): retrying the same
// report will not help soon.
var ErrRejected = errors.New("report rejected")

// deliver sends msg to rcpts through the relay in one transaction. It
// succeeds when at least one recipient took it; the refused ones are
// returned in refused.
func (o SMTPOptions) deliver(ctx context.Context, rcpts []string, msg []byte) (refused map[string]error, err error) {
	addr := o.Address
	if addr == "" {
		addr = "127.0.0.1:25"
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtp %s: %w", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var c *smtp.Client
	if o.StartTLS {
		cfg := o.TLS
		if cfg == nil {
			host, _, _ := net.SplitHostPort(addr)
			cfg = &tls.Config{ServerName: host}
		}
		c, err = smtp.NewClientStartTLS(conn, cfg)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("smtp %s: STARTTLS: %w", addr, err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = timeout, timeout
	helo := o.HelloName
	if helo == "" {
		helo = "localhost"
	}
	if err := c.Hello(helo); err != nil {
		return nil, fmt.Errorf("smtp %s: EHLO: %w", addr, err)
	}
	if o.Username != "" {
		if _, isTLS := c.TLSConnectionState(); !isTLS && !isLoopback(addr) {
			return nil, fmt.Errorf("smtp %s: AUTH refused without TLS to a relay that is not on loopback (set reports.smtp.starttls)", addr)
		}
		if err := c.Auth(sasl.NewPlainClient("", o.Username, o.Password)); err != nil {
			return nil, fmt.Errorf("smtp %s: AUTH PLAIN as %s: %w", addr, o.Username, err)
		}
	}
	if err := c.Mail(o.MailFrom, nil); err != nil {
		return nil, classify(fmt.Errorf("smtp %s: MAIL FROM:<%s>: %w", addr, o.MailFrom, err), err)
	}
	refused = map[string]error{}
	accepted := 0
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			refused[r] = err
			continue
		}
		accepted++
	}
	if accepted == 0 {
		var last error
		for _, e := range refused {
			last = e
		}
		return refused, classify(fmt.Errorf("smtp %s: every recipient refused: %w", addr, last), last)
	}
	w, err := c.Data()
	if err != nil {
		return refused, classify(fmt.Errorf("smtp %s: DATA: %w", addr, err), err)
	}
	if _, err := w.Write(msg); err != nil {
		return refused, fmt.Errorf("smtp %s: DATA: %w", addr, err)
	}
	if err := w.Close(); err != nil {
		return refused, classify(fmt.Errorf("smtp %s: end of DATA: %w", addr, err), err)
	}
	c.Quit()
	return refused, nil
}

// classify adds ErrRejected to err when the server's reply was permanent.
func classify(err, reply error) error {
	var se *smtp.SMTPError
	if errors.As(reply, &se) && se.Code >= 500 {
		return fmt.Errorf("%w: %w", ErrRejected, err)
	}
	return err
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
