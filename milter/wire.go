package milter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// The milter protocol as Sendmail's libmilter and Postfix speak it
// (version 6): every packet is a 4-byte big-endian length, a command or
// reply code, and length-1 bytes of data; strings are NUL-terminated.

// protocolVersion is the version this server speaks; an MTA offering a
// later one is answered with this one, an MTA offering one before
// minVersion is refused.
const (
	protocolVersion = 6
	minVersion      = 2
)

// maxPacket bounds one packet, command byte included: 1 MiB, as libmilter
// and go-milter. Postfix's body chunks are 65535 bytes; a header field
// beyond this is refused by the MTA's own limits long before.
const maxPacket = 1 << 20

// Reply is the milter's final answer to a message: one of the SMFIR_*
// codes accept, continue, reject, tempfail or discard, or ReplyCode with
// an SMTP reply line in Text.
type Reply struct {
	Code byte
	Text string
}

// The final replies.
var (
	ReplyAccept   = Reply{Code: RespAccept}
	ReplyContinue = Reply{Code: RespContinue}
	ReplyReject   = Reply{Code: RespReject}
	ReplyTempfail = Reply{Code: RespTempfail}
	ReplyDiscard  = Reply{Code: RespDiscard}
)

// ReplyCode returns the reply that rejects or tempfails with the SMTP
// reply line text ("550 5.7.1 ...").
func ReplyCode(text string) Reply { return Reply{Code: RespReplyCode, Text: text} }

// errProtocol marks a command the server cannot make sense of; the
// connection is closed and the MTA applies its default action.
var errProtocol = errors.New("milter protocol error")

func protocolError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
}

// packetReader reads the MTA's packets into one buffer that it keeps from
// packet to packet (readBufSize bytes at the first packet, growing at most
// to twice what has arrived): one read usually brings a packet's length
// and payload together, often the next packets too (with SMFIP_NR_* the
// MTA sends header fields without waiting). Memory follows the bytes that
// actually arrived: 5 bytes announcing 1 MiB cost one small buffer. Every
// read is under the idle deadline, so an MTA that goes silent or trickles
// a packet cannot hold a session past the timeout. A buffer grown past
// keepBufSize for a big packet is dropped once that packet has been read.
type packetReader struct {
	conn    net.Conn
	timeout time.Duration
	// buf[start:end] is the packet last returned; buf[end:] was read
	// ahead. Read-ahead is moved to the front only when buf is full, so a
	// batch of many small packets (a header block written at once) is not
	// copied once per packet.
	buf        []byte
	start, end int
	readDL     time.Time // the deadline last set; see deadline
}

const (
	// readBufSize is a connection's first buffer: a macro packet, a
	// header field or a command fits.
	readBufSize = 512
	// keepBufSize bounds the buffer a connection keeps between packets:
	// one of Postfix's body chunks (65535 bytes) with its length and
	// command byte.
	keepBufSize = 64 << 10
)

// next returns the next packet's code and data. data is valid until the
// next call.
func (r *packetReader) next() (code byte, data []byte, err error) {
	// Drop the packet returned last; keep what was read ahead.
	r.start = r.end
	switch {
	case r.buf == nil:
		r.buf = make([]byte, 0, readBufSize)
		r.start, r.end = 0, 0
	case cap(r.buf) > keepBufSize:
		rest := r.buf[r.end:]
		r.buf = append(make([]byte, 0, max(readBufSize, len(rest))), rest...)
		r.start, r.end = 0, 0
	case r.start == len(r.buf):
		r.buf, r.start, r.end = r.buf[:0], 0, 0
	}
	if err := r.fill(4); err != nil {
		if err == io.ErrUnexpectedEOF && len(r.buf) == r.start {
			err = io.EOF
		}
		return 0, nil, err
	}
	length := int(binary.BigEndian.Uint32(r.buf[r.start:]))
	if length == 0 {
		return 0, nil, protocolError("empty packet")
	}
	if length > maxPacket {
		return 0, nil, protocolError("packet of %d bytes, over the limit of %d", length, maxPacket)
	}
	if err := r.fill(4 + length); err != nil {
		return 0, nil, err
	}
	r.end = r.start + 4 + length
	return r.buf[r.start+4], r.buf[r.start+5 : r.end], nil
}

// fill reads until buf holds at least n bytes from start, under the idle
// deadline. When buf is full it first moves what is held to the front, and
// grows buf (to at most twice its size, and not past n) only when that
// leaves no room.
func (r *packetReader) fill(n int) error {
	armed := false
	for len(r.buf)-r.start < n {
		if !armed {
			r.readDL = deadline(r.timeout, r.readDL, r.conn.SetReadDeadline)
			armed = true
		}
		if len(r.buf) == cap(r.buf) && r.start > 0 {
			r.buf = r.buf[:copy(r.buf, r.buf[r.start:])]
			r.end -= r.start
			r.start = 0
		}
		if len(r.buf) == cap(r.buf) {
			r.buf = append(make([]byte, 0, min(n, 2*cap(r.buf))), r.buf...)
		}
		m, err := r.conn.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+m]
		if err != nil && len(r.buf)-r.start < n {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// deadline sets a connection deadline (through set) to now plus timeout,
// unless the one set before is already within 1/64 of that: moving a timer
// costs more than the syscall it guards, and a deadline a little early
// still bounds the wait.
func deadline(timeout time.Duration, last time.Time, set func(time.Time) error) time.Time {
	t := time.Now().Add(timeout)
	if !last.IsZero() && t.Sub(last) < timeout/64 {
		return last
	}
	set(t)
	return t
}

// packetWriter collects the milter's packets and sends them in one write
// when flushed: a reply, or the header changes of a verdict with the final
// reply that follows them.
type packetWriter struct {
	conn    net.Conn
	timeout time.Duration
	out     []byte
	writeDL time.Time
	// ack, when set, is called after each reply is written (quickAcker).
	ack func()
}

// packet appends one packet: code, then each part of data in turn.
func (w *packetWriter) packet(code byte, data ...[]byte) {
	n := 1
	for _, d := range data {
		n += len(d)
	}
	w.out = binary.BigEndian.AppendUint32(w.out, uint32(n))
	w.out = append(w.out, code)
	for _, d := range data {
		w.out = append(w.out, d...)
	}
}

// flush writes what was collected.
func (w *packetWriter) flush() error {
	if len(w.out) == 0 {
		return nil
	}
	w.writeDL = deadline(w.timeout, w.writeDL, w.conn.SetWriteDeadline)
	_, err := w.conn.Write(w.out)
	if err == nil && w.ack != nil {
		w.ack()
	}
	if cap(w.out) > keepBufSize {
		w.out = nil
	} else {
		w.out = w.out[:0]
	}
	return err
}

// Modifier asks the MTA for changes to the message, with the final reply
// to end of message. A change the MTA did not grant at negotiation is not
// sent (the server logged that at negotiation).
type Modifier struct {
	w       *packetWriter
	actions OptAction
	scratch []byte
}

// headerPacket sends a header change: an index (unless index < 0), the
// name and the value, NUL-terminated, the value's CRLF line ends sent as
// LF (what Postfix and Sendmail expect of a milter).
func (m *Modifier) headerPacket(code byte, index int, name, value string) {
	b := m.scratch[:0]
	if index >= 0 {
		b = binary.BigEndian.AppendUint32(b, uint32(index))
	}
	b = append(b, name...)
	b = append(b, 0)
	for i := 0; i < len(value); i++ {
		if value[i] == '\r' && i+1 < len(value) && value[i+1] == '\n' {
			continue
		}
		b = append(b, value[i])
	}
	b = append(b, 0)
	m.w.packet(code, b)
	m.scratch = b
}

// InsertHeader inserts a field at index (0: the top of the header).
func (m *Modifier) InsertHeader(index int, name, value string) {
	if m.actions&OptAddHeader != 0 {
		m.headerPacket(RespInsertHeader, index, name, value)
	}
}

// AddHeader appends a field at the end of the header.
func (m *Modifier) AddHeader(name, value string) {
	if m.actions&OptAddHeader != 0 {
		m.headerPacket(RespAddHeader, -1, name, value)
	}
}

// ChangeHeader replaces the index-th (1-based) field called name; an empty
// value removes it.
func (m *Modifier) ChangeHeader(index int, name, value string) {
	if m.actions&OptChangeHeader != 0 {
		m.headerPacket(RespChangeHeader, index, name, value)
	}
}

// Quarantine asks the MTA to hold the message, giving reason.
func (m *Modifier) Quarantine(reason string) {
	if m.actions&OptQuarantine != 0 {
		m.w.packet(RespQuarantine, append(append(m.scratch[:0], reason...), 0))
	}
}

// Macros are the macros the MTA sent for the command being handled and the
// stages before it in the current transaction.
type Macros struct {
	// stages[i] holds the data of the last macro packet for the command
	// of stage i (see macroStage): name NUL value NUL pairs.
	stages [numMacroStages][]byte
	cur    int
}

const numMacroStages = 11

// macroStage orders the commands macros are sent for: connect, HELO,
// MAIL, RCPT, DATA, header, end of headers, body, end of message,
// unknown, anything else.
func macroStage(cmd byte) int {
	switch cmd {
	case CmdConnect:
		return 0
	case CmdHelo:
		return 1
	case CmdMail:
		return 2
	case CmdRcpt:
		return 3
	case CmdData:
		return 4
	case CmdHeader:
		return 5
	case CmdEndOfHeaders:
		return 6
	case CmdBody:
		return 7
	case CmdEndOfMessage:
		return 8
	case CmdUnknown:
		return 9
	}
	return 10
}

// maxMacroBytes bounds the macros kept for one stage. An MTA sends a few
// hundred bytes; a bigger packet (possible up to maxPacket) is ignored,
// so that a connection holds at most numMacroStages × this.
const maxMacroBytes = 64 << 10

// set keeps the macros of a macro packet for the command cmd, and reports
// false (keeping none for that stage) when there are more than
// maxMacroBytes of them.
func (m *Macros) set(cmd byte, data []byte) bool {
	i := macroStage(cmd)
	if len(data) > maxMacroBytes {
		m.stages[i] = m.stages[i][:0]
		return false
	}
	m.stages[i] = append(m.stages[i][:0], data...)
	return true
}

// clear forgets the macros of stage from and later ones.
func (m *Macros) clear(from int) {
	for i := from; i < numMacroStages; i++ {
		m.stages[i] = m.stages[i][:0]
	}
}

// Get returns the value of the macro name ("i", "{auth_authen}"): from the
// current command's macros, else from the latest earlier stage that has
// it; "" when the MTA sent none.
func (m *Macros) Get(name string) string {
	for i := m.cur; i >= 0; i-- {
		if v, ok := lookupMacro(m.stages[i], name); ok {
			return v
		}
	}
	return ""
}

// Range calls f for every macro held, stage by stage up to the current one.
func (m *Macros) Range(f func(name, value string)) {
	for i := 0; i <= m.cur; i++ {
		for data := m.stages[i]; len(data) > 0; {
			k, rest := cstring(data)
			v, rest := cstring(rest)
			f(string(k), string(v))
			data = rest
		}
	}
}

func lookupMacro(data []byte, name string) (string, bool) {
	for len(data) > 0 {
		k, rest := cstring(data)
		v, rest := cstring(rest)
		if string(k) == name {
			return string(v), true
		}
		data = rest
	}
	return "", false
}

// cstring splits b at its first NUL: the string before it and the bytes
// after it (all of b, and nothing after, when there is no NUL).
func cstring(b []byte) (s, rest []byte) {
	for i, c := range b {
		if c == 0 {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}
