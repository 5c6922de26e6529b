package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// connect opens the SMTP side of a connection as the MTA reports it: the
// client's address (SMFIC_CONNECT with its macros) and its HELO. A final
// answer here applies to every message of the connection.
func (c *conn) connect(m *mail, mta string) (done bool, o outcome, err error) {
	if !c.has(pNoConnect) {
		c.sendMacros(cmdConnect, stageConnect, map[string]string{
			"j": mta, "{daemon_name}": mta, "{daemon_addr}": "127.0.0.1", "v": "Postfix 3.7.11",
			"_":                "unknown [" + m.ip.String() + "]",
			"{client_addr}":    m.ip.String(),
			"{client_name}":    "unknown",
			"{client_port}":    "49152",
			"{client_ptr}":     "unknown",
			"{client_resolve}": "OK",
		})
		family := byte('4')
		if m.ip.Is6() {
			family = '6'
		}
		data := append([]byte("unknown\x00"), family, 0xc0, 0x00)
		data = append(append(data, m.ip.String()...), 0)
		c.send(cmdConnect, data)
		if done, o, err = c.step(c.has(pNRConn)); done {
			return
		}
	}
	if !c.has(pNoHelo) {
		c.sendMacros(cmdHelo, stageHelo, nil)
		c.send(cmdHelo, cstr(m.helo))
		if done, o, err = c.step(c.has(pNRHelo)); done {
			return
		}
	}
	return false, o, nil
}

func cstr(s string) []byte { return append([]byte(s), 0) }

// transaction sends one message (MAIL … end of message) and returns the
// milter's answer and the time from MAIL to the final reply.
func (c *conn) transaction(m *mail, qid, mta string, received bool) (outcome, time.Duration, error) {
	start := time.Now()
	o, err := c.sendMessage(m, qid, mta, received)
	return o, time.Since(start), err
}

func (c *conn) sendMessage(m *mail, qid, mta string, received bool) (outcome, error) {
	var (
		done bool
		o    outcome
		err  error
	)
	_, mailHost, _ := strings.Cut(m.mailFrom, "@")
	if !c.has(pNoMail) {
		c.sendMacros(cmdMail, stageMail, map[string]string{
			"i": qid, "{mail_addr}": m.mailFrom, "{mail_host}": mailHost, "{mail_mailer}": "smtp",
		})
		c.send(cmdMail, cstr("<"+m.mailFrom+">"))
		if done, o, err = c.step(c.has(pNRMail)); done {
			return o, err
		}
	}
	if !c.has(pNoRcpt) {
		for _, r := range m.rcpts {
			_, host, _ := strings.Cut(r, "@")
			c.sendMacros(cmdRcpt, stageRcpt, map[string]string{"i": qid, "{rcpt_addr}": r, "{rcpt_host}": host, "{rcpt_mailer}": "local"})
			c.send(cmdRcpt, cstr("<"+r+">"))
			if done, o, err = c.step(c.has(pNRRcpt)); done {
				return o, err
			}
		}
	}
	qm := map[string]string{"i": qid}
	// SMFIC_DATA exists from protocol version 4 on.
	if c.version >= 4 && !c.has(pNoData) {
		c.sendMacros(cmdData, stageData, qm)
		c.send(cmdData)
		if done, o, err = c.step(c.has(pNRData)); done {
			return o, err
		}
	}
	if !c.has(pNoHdrs) {
		if received {
			// The Received field Postfix's smtpd adds is the first the
			// milter sees.
			if done, o, err = c.header("Received", postfixReceived(m, qid, mta)); done {
				return o, err
			}
		}
		for _, f := range m.fields {
			if done, o, err = c.header(f.name, f.value); done {
				return o, err
			}
		}
	}
	if !c.has(pNoEOH) {
		c.sendMacros(cmdEOH, stageEOH, qm)
		c.send(cmdEOH)
		if done, o, err = c.step(c.has(pNREOH)); done {
			return o, err
		}
	}
	if !c.has(pNoBody) {
	body:
		for _, chunk := range m.body {
			c.send(cmdBody, chunk)
			if err := c.flush(); err != nil {
				return o, err
			}
			if c.has(pNRBody) {
				continue
			}
			p, err := c.reply()
			if err != nil {
				return o, err
			}
			switch p.code {
			case replyContinue:
			case replySkip:
				break body
			default:
				o, err = final(p, o)
				return o, err
			}
		}
	}
	c.sendMacros(cmdEOM, stageEOM, qm)
	c.send(cmdEOM)
	if err := c.flush(); err != nil {
		return o, err
	}
	// Modifications come before the final reply.
	for {
		p, err := c.reply()
		if err != nil {
			return o, err
		}
		switch p.code {
		case modQuarantine:
			o.quarantine = true
		case modAddHeader, modInsHeader, modChgHeader:
			o.headers++
		case modAddRcpt, modDelRcpt, modAddRcptPar, modReplBody, modChgFrom, modSetSymList:
		default:
			return final(p, o)
		}
	}
}

// header sends one header field; value is as in the message after the
// colon, folded lines joined with LF. Postfix keeps the leading space only
// when the milter asked for it (SMFIP_HDR_LEADSPC).
func (c *conn) header(name, value string) (bool, outcome, error) {
	if !c.has(pLeadSpace) {
		value = strings.TrimLeft(value, " \t")
	}
	data := make([]byte, 0, len(name)+len(value)+2)
	data = append(append(append(append(data, name...), 0), value...), 0)
	c.send(cmdHeader, data)
	// SMFIP_NOHREPL (SMFIP_NR_HDR): no reply to header commands.
	return c.step(c.has(pNoHdrReply))
}

// postfixReceived is the Received field smtpd writes, as a milter gets it.
func postfixReceived(m *mail, qid, mta string) string {
	return fmt.Sprintf(" from %s (unknown [%s])\n\tby %s (Postfix) with ESMTP id %s\n\tfor <%s>; %s",
		m.helo, m.ip, mta, qid, firstOr(m.rcpts, "postmaster"), time.Now().UTC().Format("Mon, 2 Jan 2006 15:04:05 -0700 (MST)"))
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}

// quit ends the connection as the MTA does at the end of the SMTP session.
func (c *conn) quit() {
	c.send(cmdQuit)
	c.flush()
	c.close()
}

// queueID makes a Postfix-style short queue id.
func queueID(n uint64) string {
	return strings.ToUpper(strconv.FormatUint(0x1000000000+n, 16))
}
