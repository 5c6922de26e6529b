package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/authmilter/authmilter/milter"
)

// The milter protocol as the MTA speaks it (package milter names its
// codes; Postfix's milter8.c is the MTA side this client imitates).
const (
	maxBodyChunk   = 65535
	maxReplyPacket = 1 << 20
)

// What Postfix 3.x offers in SMFIC_OPTNEG: protocol version 6, every action
// (SMFIF_ADDHDRS … SMFIF_SETSYMLIST) and every protocol step flag it
// implements (SMFIP_NOCONNECT … SMFIP_HDR_LEADSPC).
const (
	offerVersion = 6
	offerActions = milter.OptAddHeader | milter.OptChangeBody | milter.OptAddRcpt | milter.OptRemoveRcpt |
		milter.OptChangeHeader | milter.OptQuarantine | milter.OptChangeFrom | milter.OptAddRcptArgs | milter.OptSetSymList
	offerProtocol = milter.OptNoConnect | milter.OptNoHelo | milter.OptNoMailFrom | milter.OptNoRcptTo |
		milter.OptNoBody | milter.OptNoHeaders | milter.OptNoEOH | milter.OptNoHeaderReply | milter.OptNoUnknown |
		milter.OptNoData | milter.OptSkip | milter.OptRcptRejected | milter.OptNoConnReply | milter.OptNoHeloReply |
		milter.OptNoMailReply | milter.OptNoRcptReply | milter.OptNoDataReply | milter.OptNoUnknownReply |
		milter.OptNoEOHReply | milter.OptNoBodyReply | milter.OptHeaderLeadingSpace
)

// defaultMacros are Postfix's default milter_*_macros, sent when the milter
// asks for no list of its own.
var defaultMacros = [7][]string{
	milter.StageConnect:  {"j", "{daemon_name}", "{daemon_addr}", "v", "_"},
	milter.StageHelo:     {"{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}"},
	milter.StageMailFrom: {"i", "{auth_type}", "{auth_authen}", "{auth_author}", "{mail_addr}", "{mail_host}", "{mail_mailer}"},
	milter.StageRcpt:     {"i", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"},
	milter.StageData:     {"i"},
	milter.StageEOM:      {"i"},
	milter.StageEOH:      {"i"},
}

// conn is one milter connection, driven as an MTA drives it. A worker
// keeps one conn for the whole run and dials it again for each milter
// connection, so the buffers below serve every message.
type conn struct {
	nc      net.Conn
	r       *bufio.Reader
	timeout time.Duration
	// deadlineSet is when the read and write deadline was last moved to
	// timeout from then; it moves again when 1/64 of timeout stale.
	deadlineSet time.Time

	// out holds the commands not written yet: as Postfix's milter8 does,
	// commands the milter does not answer (SMFIP_NR_*) wait in the
	// buffer until one needs a reply, the envelope is handed over at
	// DATA, or postfixWriteSize bytes have gathered.
	out     []byte
	in      []byte // the reply being read
	scratch []byte // a header value being built
	hdr     [4]byte

	// gap is the pause between the envelope and the content (see
	// runConfig.gap); contentAt is when the content of the current
	// transaction started to go out (zero until it does): Postfix's
	// cleanup hands the content to the milters after the client's final
	// dot, so the client waits from there to the final reply.
	gap       time.Duration
	contentAt time.Time

	version  uint32
	actions  milter.OptAction
	protocol milter.OptProtocol
	macros   [7][]string
	symlist  []byte // the symbol lists macros were parsed from
}

// errMilter is a protocol violation by the milter.
var errMilter = errors.New("milter protocol error")

// dial opens a connection to the milter and negotiates options.
func (c *conn) dial(d *net.Dialer, network, addr string) error {
	nc, err := d.Dial(network, addr)
	if err != nil {
		return err
	}
	c.nc = nc
	c.out = c.out[:0]
	// Postfix leaves Nagle's algorithm on for its milter connections.
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(false)
	}
	if c.r == nil {
		c.r = bufio.NewReaderSize(nc, 4096)
	} else {
		c.r.Reset(nc)
	}
	c.deadlineSet = time.Time{}
	if err := c.negotiate(); err != nil {
		c.close()
		return err
	}
	return nil
}

func (c *conn) close() error {
	err := c.nc.Close()
	c.nc = nil
	c.r.Reset(nil)
	return err
}

// open reports whether the connection is up.
func (c *conn) open() bool { return c.nc != nil }

// touchDeadline keeps the connection's deadline at timeout from now, within
// 1/64 of it, without moving the runtime's timer for every packet.
func (c *conn) touchDeadline() {
	now := time.Now()
	if now.Sub(c.deadlineSet) > c.timeout/64 {
		c.nc.SetDeadline(now.Add(c.timeout))
		c.deadlineSet = now
	}
}

// appendPacket appends one milter packet: length, command, data.
func appendPacket(dst []byte, cmd byte, data ...[]byte) []byte {
	n := 1
	for _, d := range data {
		n += len(d)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, cmd)
	for _, d := range data {
		dst = append(dst, d...)
	}
	return dst
}

// send queues one command (after its macros, when it has any) in c.out;
// step and flush decide when the queue is written (see conn.out).
func (c *conn) send(cmd byte, data ...[]byte) {
	c.out = appendPacket(c.out, cmd, data...)
}

// flush writes the commands gathered in c.out, in one write.
func (c *conn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	err := c.write(c.out)
	c.out = c.out[:0]
	return err
}

// postfixWriteSize is the most Postfix 3.7's cleanup server wrote to a
// milter at once (strace: a 20 KB message's headers, body and end of
// message in one write; a 200 KB one in writes of 131072 bytes and the
// rest).
const postfixWriteSize = 128 << 10

// queue adds encoded packets to c.out and writes what fills whole
// postfixWriteSize pieces.
func (c *conn) queue(pkt []byte) error {
	c.out = append(c.out, pkt...)
	for len(c.out) >= postfixWriteSize {
		if err := c.write(c.out[:postfixWriteSize]); err != nil {
			c.out = c.out[:0]
			return err
		}
		c.out = c.out[:copy(c.out, c.out[postfixWriteSize:])]
	}
	return nil
}

// write writes one or more encoded packets in one write.
func (c *conn) write(b []byte) error {
	c.touchDeadline()
	_, err := c.nc.Write(b)
	return err
}

// packet is one reply from the milter; data is valid until the next read.
type packet struct {
	code byte
	data []byte
}

func (c *conn) read() (packet, error) {
	c.touchDeadline()
	if _, err := io.ReadFull(c.r, c.hdr[:]); err != nil {
		return packet{}, err
	}
	n := binary.BigEndian.Uint32(c.hdr[:])
	if n == 0 || n > maxReplyPacket {
		return packet{}, fmt.Errorf("%w: reply length %d", errMilter, n)
	}
	if cap(c.in) < int(n) {
		c.in = make([]byte, n)
	}
	buf := c.in[:n]
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
		if err != nil || p.code != milter.RespProgress {
			return p, err
		}
	}
}

func (c *conn) negotiate() error {
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:], offerVersion)
	binary.BigEndian.PutUint32(b[4:], uint32(offerActions))
	binary.BigEndian.PutUint32(b[8:], uint32(offerProtocol))
	c.send(milter.CmdOptNeg, b[:])
	if err := c.flush(); err != nil {
		return err
	}
	p, err := c.read()
	if err != nil {
		return fmt.Errorf("option negotiation: %w", err)
	}
	if p.code != milter.CmdOptNeg || len(p.data) < 12 {
		return fmt.Errorf("%w: option negotiation reply %q", errMilter, p.code)
	}
	c.version = binary.BigEndian.Uint32(p.data[0:])
	c.actions = milter.OptAction(binary.BigEndian.Uint32(p.data[4:]))
	c.protocol = milter.OptProtocol(binary.BigEndian.Uint32(p.data[8:])) & offerProtocol
	if c.version < 2 || c.version > offerVersion {
		return fmt.Errorf("%w: milter protocol version %d", errMilter, c.version)
	}
	// A milter answers every connection with the same symbol lists: parse
	// them when they differ from the last connection's.
	if rest := p.data[12:]; c.symlist == nil || !bytes.Equal(rest, c.symlist) {
		c.macros = parseSymLists(rest)
		c.symlist = append(c.symlist[:0:0], rest...)
	}
	return nil
}

// parseSymLists parses the symbol lists of an option negotiation reply
// (SMFIF_SETSYMLIST): uint32 stage, then the macro names, space-separated,
// NUL-terminated. Stages without a list keep Postfix's defaults.
func parseSymLists(rest []byte) [7][]string {
	macros := defaultMacros
	for len(rest) >= 5 {
		stage := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		end := bytes.IndexByte(rest, 0)
		if end < 0 {
			end = len(rest)
		}
		if stage < uint32(len(macros)) {
			macros[stage] = strings.Fields(string(rest[:end]))
		}
		rest = rest[min(end+1, len(rest)):]
	}
	return macros
}

func (c *conn) has(flag milter.OptProtocol) bool { return c.protocol&flag != 0 }

// sendMacros queues the macros of stage that have a value, as Postfix does
// (undefined macros are not sent; nothing is sent when none is defined).
// value gives a macro's value at the stage, "" when undefined.
func (c *conn) sendMacros(cmd byte, stage milter.Stage, value func(name string) string) {
	start := len(c.out)
	c.out = append(c.out, 0, 0, 0, 0, milter.CmdMacro, cmd)
	for _, name := range c.macros[stage] {
		v := value(name)
		if v == "" {
			// Postfix accepts names with or without braces.
			v = value(strings.Trim(name, "{}"))
		}
		if v == "" {
			continue
		}
		c.out = append(c.out, name...)
		c.out = append(c.out, 0)
		c.out = append(c.out, v...)
		c.out = append(c.out, 0)
	}
	if n := len(c.out) - start; n == 6 {
		c.out = c.out[:start]
	} else {
		binary.BigEndian.PutUint32(c.out[start:], uint32(n-4))
	}
}

// outcome is the milter's answer to one message.
type outcome struct {
	action     string // accept, reject, tempfail, quarantine, discard, skip… see classify
	code       string // SMTP reply code for reject/tempfail with text
	quarantine bool
	headers    int // header changes (add, insert, change)
}

// step ends a command queued in c.out: when the milter answers it, the
// gathered commands are written and the answer read (continue goes on,
// anything else ends the message); when it does not (noReply), the
// command waits in c.out with the next ones.
func (c *conn) step(noReply bool) (done bool, o outcome, err error) {
	if noReply {
		return false, o, nil
	}
	return c.answer(c.flush())
}

// stepPacket is step for a command encoded beforehand.
func (c *conn) stepPacket(pkt []byte, noReply bool) (done bool, o outcome, err error) {
	if err := c.queue(pkt); err != nil {
		return true, o, err
	}
	return c.step(noReply)
}

func (c *conn) answer(writeErr error) (done bool, o outcome, err error) {
	if writeErr != nil {
		return true, o, writeErr
	}
	p, err := c.reply()
	if err != nil {
		return true, o, err
	}
	if p.code == milter.RespContinue {
		return false, o, nil
	}
	o, err = final(p, o)
	return true, o, err
}

// final turns a final reply into an outcome.
func final(p packet, o outcome) (outcome, error) {
	switch p.code {
	case milter.RespAccept, milter.RespContinue:
		o.action = "accept"
	case milter.RespReject:
		o.action, o.code = "reject", "550"
	case milter.RespTempfail:
		o.action, o.code = "tempfail", "451"
	case milter.RespDiscard:
		o.action = "discard"
	case milter.RespConnFail:
		o.action = "tempfail"
	case milter.RespSkip:
		o.action = "skip"
	case milter.RespReplyCode:
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
