package main

import (
	"bytes"
	"strconv"
	"time"

	"github.com/authmilter/authmilter/milter"
)

// connect opens the SMTP side of a connection as the MTA reports it: the
// client's address (SMFIC_CONNECT with its macros) and its HELO. A final
// answer here applies to every message of the connection.
func (c *conn) connect(m *mail, mta string) (done bool, o outcome, err error) {
	if !c.has(milter.OptNoConnect) {
		c.sendMacros(milter.CmdConnect, milter.StageConnect, func(name string) string {
			switch name {
			case "j", "{daemon_name}":
				return mta
			case "{daemon_addr}":
				return "127.0.0.1"
			case "v":
				return "Postfix 3.7.11"
			case "_":
				return m.wire.clientMacro
			case "{client_addr}":
				return m.wire.clientAddr
			case "{client_name}", "{client_ptr}":
				return "unknown"
			case "{client_port}":
				return "49152"
			case "{client_resolve}":
				return "OK"
			}
			return ""
		})
		c.send(milter.CmdConnect, m.wire.connect)
		if done, o, err = c.step(c.has(milter.OptNoConnReply)); done {
			return
		}
	}
	if !c.has(milter.OptNoHelo) {
		c.sendMacros(milter.CmdHelo, milter.StageHelo, noMacros)
		c.send(milter.CmdHelo, m.wire.helo)
		if done, o, err = c.step(c.has(milter.OptNoHeloReply)); done {
			return
		}
	}
	return false, o, nil
}

// noMacros is the value of every macro at a stage where the MTA defines
// none (HELO: no TLS here).
func noMacros(string) string { return "" }

// transaction sends one message (MAIL … end of message) and returns the
// milter's answer, the time from MAIL to the final reply, and the time
// from the start of the content (header, body, end of message) to the
// final reply, the SMTP client's wait after its final dot (zero when the
// milter answered before the content). A milter that answers every header
// (no SMFIP_NR_HDR) and does work at the end of the header, as OpenDKIM
// fetches keys there, makes the client wait for it as well.
func (c *conn) transaction(m *mail, qid, mta string, received bool) (outcome, time.Duration, time.Duration, error) {
	start := time.Now()
	c.contentAt = time.Time{}
	o, err := c.sendMessage(m, qid, mta, received)
	end := time.Now()
	var eomWait time.Duration
	if !c.contentAt.IsZero() {
		eomWait = end.Sub(c.contentAt)
	}
	return o, end.Sub(start), eomWait, err
}

func (c *conn) sendMessage(m *mail, qid, mta string, received bool) (outcome, error) {
	var (
		done bool
		o    outcome
		err  error
	)
	onlyQueueID := func(name string) string {
		if name == "i" {
			return qid
		}
		return ""
	}
	if !c.has(milter.OptNoMailFrom) {
		c.sendMacros(milter.CmdMail, milter.StageMailFrom, func(name string) string {
			switch name {
			case "i":
				return qid
			case "{mail_addr}":
				return m.mailFrom
			case "{mail_host}":
				return m.wire.mailHost
			case "{mail_mailer}":
				return "smtp"
			}
			return ""
		})
		c.send(milter.CmdMail, m.wire.mail)
		if done, o, err = c.step(c.has(milter.OptNoMailReply)); done {
			return o, err
		}
	}
	if !c.has(milter.OptNoRcptTo) {
		for i := range m.wire.rcpts {
			r := &m.wire.rcpts[i]
			c.sendMacros(milter.CmdRcpt, milter.StageRcpt, func(name string) string {
				switch name {
				case "i":
					return qid
				case "{rcpt_addr}":
					return r.addr
				case "{rcpt_host}":
					return r.host
				case "{rcpt_mailer}":
					return "local"
				}
				return ""
			})
			c.send(milter.CmdRcpt, r.data)
			if done, o, err = c.step(c.has(milter.OptNoRcptReply)); done {
				return o, err
			}
		}
	}
	// SMFIC_DATA exists from protocol version 4 on.
	if c.version >= 4 && !c.has(milter.OptNoData) {
		c.sendMacros(milter.CmdData, milter.StageData, onlyQueueID)
		c.send(milter.CmdData)
		if done, o, err = c.step(c.has(milter.OptNoDataReply)); done {
			return o, err
		}
	}
	// Postfix's smtpd hands the message to its cleanup server here, and
	// writes what it gathered of the envelope first.
	if err := c.flush(); err != nil {
		return o, err
	}
	// The client's DATA and transfer: cleanup hands the content to the
	// milters only after the final dot, all at once.
	if c.gap > 0 {
		time.Sleep(c.gap)
	}
	c.contentAt = time.Now()
	if !c.has(milter.OptNoHeaders) {
		lead := c.has(milter.OptHeaderLeadingSpace)
		// SMFIP_NOHREPL (SMFIP_NR_HDR): no reply to header commands.
		noReply := c.has(milter.OptNoHeaderReply)
		if received {
			// The Received field Postfix's smtpd adds is the first the
			// milter sees.
			c.scratch = appendPostfixReceived(c.scratch[:0], m, qid, mta, time.Now())
			c.out = appendHeaderPacket(c.out, "Received", c.scratch, lead)
			if done, o, err = c.step(noReply); done {
				return o, err
			}
		}
		for _, p := range m.wire.headers[boolIndex(lead)] {
			if done, o, err = c.stepPacket(p, noReply); done {
				return o, err
			}
		}
	}
	if !c.has(milter.OptNoEOH) {
		c.sendMacros(milter.CmdEndOfHeaders, milter.StageEOH, onlyQueueID)
		c.send(milter.CmdEndOfHeaders)
		if done, o, err = c.step(c.has(milter.OptNoEOHReply)); done {
			return o, err
		}
	}
	if !c.has(milter.OptNoBody) {
	body:
		for _, p := range m.wire.body {
			if err := c.queue(p); err != nil {
				return o, err
			}
			if c.has(milter.OptNoBodyReply) {
				continue
			}
			if err := c.flush(); err != nil {
				return o, err
			}
			p, err := c.reply()
			if err != nil {
				return o, err
			}
			switch p.code {
			case milter.RespContinue:
			case milter.RespSkip:
				break body
			default:
				o, err = final(p, o)
				return o, err
			}
		}
	}
	c.sendMacros(milter.CmdEndOfMessage, milter.StageEOM, onlyQueueID)
	c.send(milter.CmdEndOfMessage)
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
		case milter.RespQuarantine:
			o.quarantine = true
		case milter.RespAddHeader, milter.RespInsertHeader, milter.RespChangeHeader:
			o.headers++
		case milter.RespAddRcpt, milter.RespRemoveRcpt, milter.RespAddRcptArgs, milter.RespReplaceBody, milter.RespChangeFrom, milter.RespSetSymList:
		default:
			return final(p, o)
		}
	}
}

// appendHeaderPacket appends the SMFIC_HEADER packet of one header field;
// value is as in the message after the colon, folded lines joined with LF.
// Postfix keeps the leading space only when the milter asked for it
// (SMFIP_HDR_LEADSPC).
func appendHeaderPacket(dst []byte, name string, value []byte, leadSpace bool) []byte {
	if !leadSpace {
		value = bytes.TrimLeft(value, " \t")
	}
	return appendPacket(dst, milter.CmdHeader, []byte(name), nul, value, nul)
}

var nul = []byte{0}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// appendPostfixReceived appends the value of the Received field smtpd
// writes, as a milter gets it.
func appendPostfixReceived(dst []byte, m *mail, qid, mta string, now time.Time) []byte {
	dst = append(dst, " from "...)
	dst = append(dst, m.helo...)
	dst = append(dst, " (unknown ["...)
	dst = append(dst, m.wire.clientAddr...)
	dst = append(dst, "])\n\tby "...)
	dst = append(dst, mta...)
	dst = append(dst, " (Postfix) with ESMTP id "...)
	dst = append(dst, qid...)
	dst = append(dst, "\n\tfor <"...)
	dst = append(dst, firstOr(m.rcpts, "postmaster")...)
	dst = append(dst, ">; "...)
	return now.UTC().AppendFormat(dst, "Mon, 2 Jan 2006 15:04:05 -0700 (MST)")
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}

// quit ends the connection as the MTA does at the end of the SMTP session.
func (c *conn) quit() {
	c.send(milter.CmdQuit)
	c.flush()
	c.close()
}

// queueID makes a Postfix-style short queue id: upper-case hexadecimal.
func queueID(n uint64) string {
	var b [16]byte
	id := strconv.AppendUint(b[:0], 0x1000000000+n, 16)
	for i, ch := range id {
		if 'a' <= ch && ch <= 'f' {
			id[i] = ch - 'a' + 'A'
		}
	}
	return string(id)
}
