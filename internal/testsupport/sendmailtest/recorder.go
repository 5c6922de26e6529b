package sendmailtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authmilter/authmilter/milter"
)

// Recorder is a milter proxy between the MTA and the milter that keeps a
// copy of every packet, so that a test can see what the MTA really sends
// (negotiation, macros, the connect address) without tracing either side.
type Recorder struct {
	ln       net.Listener
	upstream string

	mu      sync.Mutex
	closed  bool
	packets []Packet
	conns   []net.Conn
	nconn   int
	wg      sync.WaitGroup
}

// Packet is one milter protocol packet.
type Packet struct {
	Conn    int  // 1 for the MTA's first connection to the proxy, …
	FromMTA bool // false: the milter's reply
	Cmd     byte // command or reply code: milter.CmdOptNeg, milter.RespReplyCode, …
	Data    []byte
}

// NewRecorder listens on 127.0.0.1 and forwards every connection to the
// milter at upstream ("host:port"). t.Cleanup closes it.
func NewRecorder(t testing.TB, upstream string) *Recorder {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Recorder{ln: ln, upstream: upstream}
	r.wg.Add(1)
	go r.serve()
	t.Cleanup(r.Close)
	return r
}

// Socket is the proxy as Sendmail names a milter socket:
// "inet:PORT@127.0.0.1".
func (r *Recorder) Socket() string {
	return "inet:" + strconv.Itoa(r.ln.Addr().(*net.TCPAddr).Port) + "@127.0.0.1"
}

// Close stops the proxy and waits for its goroutines.
func (r *Recorder) Close() {
	_ = r.ln.Close()
	r.mu.Lock()
	r.closed = true
	for _, c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Packets returns a copy of the packets recorded so far, in order of
// arrival per direction.
func (r *Recorder) Packets() []Packet {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Packet(nil), r.packets...)
}

func (r *Recorder) serve() {
	defer r.wg.Done()
	for {
		mta, err := r.ln.Accept()
		if err != nil {
			return
		}
		milter, err := net.DialTimeout("tcp", r.upstream, 5*time.Second)
		if err != nil {
			_ = mta.Close()
			continue
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			_ = mta.Close()
			_ = milter.Close()
			return
		}
		r.nconn++
		n := r.nconn
		r.conns = append(r.conns, mta, milter)
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pipe(n, true, mta, milter)
		go r.pipe(n, false, milter, mta)
	}
}

// pipe copies packets from src to dst, recording each, until either side
// closes or stays silent for two minutes.
func (r *Recorder) pipe(n int, fromMTA bool, src, dst net.Conn) {
	defer r.wg.Done()
	defer func() { _ = src.Close(); _ = dst.Close() }()
	var hdr [4]byte
	for {
		_ = src.SetReadDeadline(time.Now().Add(2 * time.Minute))
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size == 0 || size > 1<<20 {
			return
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(src, body); err != nil {
			return
		}
		r.mu.Lock()
		r.packets = append(r.packets, Packet{Conn: n, FromMTA: fromMTA, Cmd: body[0], Data: body[1:]})
		r.mu.Unlock()
		_ = dst.SetWriteDeadline(time.Now().Add(time.Minute))
		if _, err := dst.Write(append(hdr[:], body...)); err != nil {
			return
		}
	}
}

// Negotiation decodes an option negotiation packet (milter.CmdOptNeg): protocol version, actions and
// protocol flags, and (from a milter) the macro lists it asks for.
func (p Packet) Negotiation() (version, actions, protocol uint32, symlists map[uint32]string, err error) {
	if p.Cmd != milter.CmdOptNeg || len(p.Data) < 12 {
		return 0, 0, 0, nil, errors.New("not an option negotiation packet")
	}
	version = binary.BigEndian.Uint32(p.Data)
	actions = binary.BigEndian.Uint32(p.Data[4:])
	protocol = binary.BigEndian.Uint32(p.Data[8:])
	rest := p.Data[12:]
	for len(rest) >= 4 {
		stage := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		list, after, _ := bytes.Cut(rest, []byte{0})
		if symlists == nil {
			symlists = map[uint32]string{}
		}
		symlists[stage] = string(list)
		rest = after
	}
	return version, actions, protocol, symlists, nil
}

// Connect decodes a connect packet (milter.CmdConnect): the client's host
// name, the family (milter.FamilyInet, …), port and address exactly as the
// MTA wrote them.
func (p Packet) Connect() (host string, family byte, port uint16, addr string, err error) {
	if p.Cmd != milter.CmdConnect {
		return "", 0, 0, "", errors.New("not a connect packet")
	}
	h, rest, ok := bytes.Cut(p.Data, []byte{0})
	if !ok || len(rest) < 1 {
		return "", 0, 0, "", errors.New("malformed connect packet")
	}
	family = rest[0]
	rest = rest[1:]
	if family == milter.FamilyInet || family == milter.FamilyInet6 {
		if len(rest) < 2 {
			return "", 0, 0, "", errors.New("malformed connect packet")
		}
		port = binary.BigEndian.Uint16(rest)
		rest = rest[2:]
	}
	a, _, _ := bytes.Cut(rest, []byte{0})
	return string(h), family, port, string(a), nil
}

// Macros decodes a macro packet (milter.CmdMacro): the command the macros are for and the
// name/value pairs, in order.
func (p Packet) Macros() (forCmd byte, pairs [][2]string, err error) {
	if p.Cmd != milter.CmdMacro || len(p.Data) < 1 {
		return 0, nil, errors.New("not a macro packet")
	}
	forCmd = p.Data[0]
	fields := strings.Split(string(p.Data[1:]), "\x00")
	if len(fields) > 0 && fields[len(fields)-1] == "" {
		fields = fields[:len(fields)-1]
	}
	for i := 0; i+1 < len(fields); i += 2 {
		pairs = append(pairs, [2]string{fields[i], fields[i+1]})
	}
	return forCmd, pairs, nil
}

// String renders the packet for a log: the command and, for negotiation,
// connect and macro packets, the decoded contents.
func (p Packet) String() string {
	dir := "MTA->milter"
	if !p.FromMTA {
		dir = "milter->MTA"
	}
	head := fmt.Sprintf("#%d %s %q", p.Conn, dir, p.Cmd)
	switch p.Cmd {
	case milter.CmdOptNeg:
		if v, a, pr, sl, err := p.Negotiation(); err == nil {
			s := fmt.Sprintf("%s version=%d actions=%#x protocol=%#x", head, v, a, pr)
			if len(sl) > 0 {
				s += fmt.Sprintf(" macros=%v", sl)
			}
			return s
		}
	case milter.CmdConnect:
		if h, f, port, a, err := p.Connect(); err == nil {
			return fmt.Sprintf("%s host=%q family=%q port=%d addr=%q", head, h, f, port, a)
		}
	case milter.CmdMacro:
		if c, pairs, err := p.Macros(); err == nil {
			return fmt.Sprintf("%s for %q: %q", head, c, pairs)
		}
	case milter.CmdHelo, milter.CmdMail, milter.CmdRcpt, milter.CmdHeader,
		milter.RespReplyCode, milter.RespAddHeader, milter.RespInsertHeader, milter.RespChangeHeader, milter.RespQuarantine:
		return fmt.Sprintf("%s %q", head, bytes.TrimRight(p.Data, "\x00"))
	}
	if len(p.Data) > 0 {
		return fmt.Sprintf("%s (%d bytes)", head, len(p.Data))
	}
	return head
}
