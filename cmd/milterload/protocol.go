package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// The milter protocol as the MTA speaks it (libmilter's mfdef.h; Postfix's
// milter8.c is the MTA side this client imitates).
const (
	cmdAbort   = 'A'
	cmdBody    = 'B'
	cmdConnect = 'C'
	cmdMacro   = 'D'
	cmdEOM     = 'E'
	cmdHelo    = 'H'
	cmdHeader  = 'L'
	cmdMail    = 'M'
	cmdEOH     = 'N'
	cmdOptNeg  = 'O'
	cmdQuit    = 'Q'
	cmdRcpt    = 'R'
	cmdData    = 'T'

	replyAccept    = 'a'
	replyContinue  = 'c'
	replyDiscard   = 'd'
	replyProgress  = 'p'
	replyReject    = 'r'
	replySkip      = 's'
	replyTempfail  = 't'
	replyCode      = 'y'
	replyConnFail  = 'f'
	modQuarantine  = 'q'
	modAddHeader   = 'h'
	modInsHeader   = 'i'
	modChgHeader   = 'm'
	modAddRcpt     = '+'
	modDelRcpt     = '-'
	modAddRcptPar  = '2'
	modReplBody    = 'b'
	modChgFrom     = 'e'
	modSetSymList  = 'l'
	maxBodyChunk   = 65535
	maxReplyPacket = 1 << 20
)

// What Postfix 3.x offers in SMFIC_OPTNEG: protocol version 6, every action
// (SMFIF_ADDHDRS … SMFIF_SETSYMLIST) and every protocol step flag it
// implements (SMFIP_NOCONNECT … SMFIP_HDR_LEADSPC).
const (
	offerVersion  = 6
	offerActions  = 0x1ff
	offerProtocol = 0x1fffff
)

// Protocol flags the client honours (SMFIP_*).
const (
	pNoConnect  = 1 << 0
	pNoHelo     = 1 << 1
	pNoMail     = 1 << 2
	pNoRcpt     = 1 << 3
	pNoBody     = 1 << 4
	pNoHdrs     = 1 << 5
	pNoEOH      = 1 << 6
	pNoHdrReply = 1 << 7
	pNoData     = 1 << 9
	pNRConn     = 1 << 12
	pNRHelo     = 1 << 13
	pNRMail     = 1 << 14
	pNRRcpt     = 1 << 15
	pNRData     = 1 << 16
	pNREOH      = 1 << 18
	pNRBody     = 1 << 19
	pLeadSpace  = 1 << 20
)

// Macro stages of the SMFIC_OPTNEG symbol lists (SMFIM_*).
const (
	stageConnect = 0
	stageHelo    = 1
	stageMail    = 2
	stageRcpt    = 3
	stageData    = 4
	stageEOM     = 5
	stageEOH     = 6
)

// defaultMacros are Postfix's default milter_*_macros, sent when the milter
// asks for no list of its own.
var defaultMacros = [7][]string{
	stageConnect: {"j", "{daemon_name}", "{daemon_addr}", "v", "_"},
	stageHelo:    {"{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}"},
	stageMail:    {"i", "{auth_type}", "{auth_authen}", "{auth_author}", "{mail_addr}", "{mail_host}", "{mail_mailer}"},
	stageRcpt:    {"i", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"},
	stageData:    {"i"},
	stageEOM:     {"i"},
	stageEOH:     {"i"},
}

// conn is one milter connection, driven as an MTA drives it.
type conn struct {
	nc      net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	timeout time.Duration

	version  uint32
	actions  uint32
	protocol uint32
	macros   [7][]string
	hdr      [4]byte
}

// errMilter is a protocol violation by the milter.
var errMilter = errors.New("milter protocol error")

func dialMilter(network, addr string, timeout time.Duration) (*conn, error) {
	nc, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return nil, err
	}
	c := &conn{nc: nc, r: bufio.NewReaderSize(nc, 4096), w: bufio.NewWriterSize(nc, 64<<10), timeout: timeout, macros: defaultMacros}
	if err := c.negotiate(); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *conn) close() error { return c.nc.Close() }

// send queues one command; flush sends the queue (a reply is awaited only
// after a flush, so macros travel with their command in one write).
func (c *conn) send(cmd byte, data ...[]byte) error {
	n := 1
	for _, d := range data {
		n += len(d)
	}
	binary.BigEndian.PutUint32(c.hdr[:], uint32(n))
	c.w.Write(c.hdr[:])
	c.w.WriteByte(cmd)
	for _, d := range data {
		c.w.Write(d)
	}
	return nil
}

func (c *conn) flush() error {
	c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.w.Flush()
}

// packet is one reply from the milter.
type packet struct {
	code byte
	data []byte
}

func (c *conn) read() (packet, error) {
	c.nc.SetReadDeadline(time.Now().Add(c.timeout))
	if _, err := io.ReadFull(c.r, c.hdr[:]); err != nil {
		return packet{}, err
	}
	n := binary.BigEndian.Uint32(c.hdr[:])
	if n == 0 || n > maxReplyPacket {
		return packet{}, fmt.Errorf("%w: reply length %d", errMilter, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return packet{}, err
	}
	return packet{code: buf[0], data: buf[1:]}, nil
}

// reply reads the milter's answer to a command, skipping progress
// reports.
func (c *conn) reply() (packet, error) {
	for {
		p, err := c.read()
		if err != nil || p.code != replyProgress {
			return p, err
		}
	}
}

func (c *conn) negotiate() error {
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:], offerVersion)
	binary.BigEndian.PutUint32(b[4:], offerActions)
	binary.BigEndian.PutUint32(b[8:], offerProtocol)
	c.send(cmdOptNeg, b[:])
	if err := c.flush(); err != nil {
		return err
	}
	p, err := c.read()
	if err != nil {
		return fmt.Errorf("option negotiation: %w", err)
	}
	if p.code != cmdOptNeg || len(p.data) < 12 {
		return fmt.Errorf("%w: option negotiation reply %q", errMilter, p.code)
	}
	c.version = binary.BigEndian.Uint32(p.data[0:])
	c.actions = binary.BigEndian.Uint32(p.data[4:])
	c.protocol = binary.BigEndian.Uint32(p.data[8:]) & offerProtocol
	if c.version < 2 || c.version > offerVersion {
		return fmt.Errorf("%w: milter protocol version %d", errMilter, c.version)
	}
	// Symbol lists (SMFIF_SETSYMLIST): uint32 stage, then the macro names,
	// space-separated, NUL-terminated.
	rest := p.data[12:]
	for len(rest) >= 5 {
		stage := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		end := strings.IndexByte(string(rest), 0)
		if end < 0 {
			end = len(rest)
		}
		if stage < uint32(len(c.macros)) {
			c.macros[stage] = strings.Fields(string(rest[:end]))
		}
		rest = rest[min(end+1, len(rest)):]
	}
	return nil
}

func (c *conn) has(flag uint32) bool { return c.protocol&flag != 0 }

// sendMacros queues the macros of stage that have a value, as Postfix does
// (undefined macros are not sent; nothing is sent when none is defined).
func (c *conn) sendMacros(cmd byte, stage int, vals map[string]string) {
	var data []byte
	for _, name := range c.macros[stage] {
		v, ok := vals[name]
		if !ok {
			// Postfix accepts names with or without braces.
			v, ok = vals[strings.Trim(name, "{}")]
		}
		if !ok || v == "" {
			continue
		}
		data = append(data, name...)
		data = append(data, 0)
		data = append(data, v...)
		data = append(data, 0)
	}
	if data != nil {
		c.send(cmdMacro, []byte{cmd}, data)
	}
}

// outcome is the milter's answer to one message.
type outcome struct {
	action     string // accept, reject, tempfail, quarantine, discard, skip… see classify
	code       string // SMTP reply code for reject/tempfail with text
	quarantine bool
	headers    int // header changes (add, insert, change)
}

// step sends a queued command (when the milter replies to it) and reads the
// answer: continue goes on, anything else ends the message.
func (c *conn) step(noReply bool) (done bool, o outcome, err error) {
	if err := c.flush(); err != nil {
		return true, o, err
	}
	if noReply {
		return false, o, nil
	}
	p, err := c.reply()
	if err != nil {
		return true, o, err
	}
	if p.code == replyContinue {
		return false, o, nil
	}
	o, err = final(p, o)
	return true, o, err
}

// final turns a final reply into an outcome.
func final(p packet, o outcome) (outcome, error) {
	switch p.code {
	case replyAccept, replyContinue:
		o.action = "accept"
	case replyReject:
		o.action, o.code = "reject", "550"
	case replyTempfail:
		o.action, o.code = "tempfail", "451"
	case replyDiscard:
		o.action = "discard"
	case replyConnFail:
		o.action = "tempfail"
	case replySkip:
		o.action = "skip"
	case replyCode:
		text := strings.TrimRight(string(p.data), "\x00")
		if len(text) < 3 {
			return o, fmt.Errorf("%w: reply code %q", errMilter, text)
		}
		code := text[:3]
		if _, err := strconv.Atoi(code); err != nil {
			return o, fmt.Errorf("%w: reply code %q", errMilter, text)
		}
		o.code = code
		switch code[0] {
		case '5':
			o.action = "reject"
		case '4':
			o.action = "tempfail"
		default:
			o.action = "other"
		}
	default:
		return o, fmt.Errorf("%w: unexpected reply %q", errMilter, p.code)
	}
	if o.action == "accept" && o.quarantine {
		o.action = "quarantine"
	}
	return o, nil
}
