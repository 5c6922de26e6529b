package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/milter"
)

// TestWritesAsPostfix drives one connection over a net.Pipe, whose reads
// never join two writes, and checks how the commands are grouped into
// writes, as Postfix 3.7 groups them (seen with strace): a milter that
// answers every command gets one command (with its macros) per write; one
// that was granted every SMFIP_NR_* flag gets the negotiation, then the
// whole envelope (connect to DATA) in one write, then the headers, body
// and end of message in another, then QUIT. A full body chunk (65535
// bytes) is one packet. It also checks what each command carries, so
// encoding packets once per corpus load cannot change the bytes.
func TestWritesAsPostfix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	body := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz\n", 2000) // 74000 bytes with CRLF
	eml := "From: a@sender.example\nSubject: one\n two\nTo: b@rcpt.example\n\n" + body
	env := `{"client_ip": "192.0.2.7", "helo": "mx.sender.example", "mail_from": "a@sender.example", "rcpts": ["b@rcpt.example"]}`
	for name, data := range map[string]string{"m.eml": eml, "m.env": env} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := loadMail(filepath.Join(dir, "m.eml"), filepath.Join(dir, "m.env"))
	if err != nil {
		t.Fatal(err)
	}
	const allNR = milter.OptNoConnReply | milter.OptNoHeloReply | milter.OptNoMailReply | milter.OptNoRcptReply | milter.OptNoDataReply | milter.OptNoHeaderReply | milter.OptNoEOHReply | milter.OptNoBodyReply
	for _, tc := range []struct {
		name    string
		granted milter.OptProtocol
		want    string
	}{
		{"every reply", milter.OptHeaderLeadingSpace, "O DC+C H DM+M DR+R DT+T L L(folded) L DN+N B B DE+E Q"},
		{"no replies before end of message", allNR | milter.OptHeaderLeadingSpace, "O DC+CHDM+MDR+RDT+T LL(folded)LDN+NBBDE+E Q"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mtaEnd, milterEnd := net.Pipe()
			defer mtaEnd.Close()
			writes := make(chan []byte, 100)
			go fakeMilter(milterEnd, tc.granted, writes)

			c := &conn{nc: mtaEnd, r: bufio.NewReader(mtaEnd), timeout: 5 * time.Second}
			if err := c.negotiate(); err != nil {
				t.Fatal(err)
			}
			if done, _, err := c.connect(m, "mx.inbound.example"); done || err != nil {
				t.Fatalf("connect: done %v, %v", done, err)
			}
			o, _, _, err := c.transaction(m, queueID(1), "mx.inbound.example", false)
			if err != nil || o.action != "accept" {
				t.Fatalf("transaction: %+v, %v", o, err)
			}
			c.quit()

			// Each write: its commands (a macro packet names the command
			// it belongs to).
			var got []string
			var bodyGot []byte
			var chunks []int
			for w := range writes {
				var cmds string
				for len(w) > 0 {
					if len(w) < 5 {
						t.Fatalf("write ends in a partial packet: %q", w)
					}
					n := binary.BigEndian.Uint32(w)
					if int(n) > len(w)-4 {
						t.Fatalf("packet of %d bytes split across writes", n)
					}
					p := w[4 : 4+n]
					switch {
					case p[0] == milter.CmdMacro:
						cmds += "D" + string(p[1]) + "+"
					case p[0] == milter.CmdBody:
						cmds += "B"
						chunks = append(chunks, len(p)-1)
						bodyGot = append(bodyGot, p[1:]...)
					case string(p) == "LSubject\x00 one\n two\x00": // SMFIP_HDR_LEADSPC
						cmds += "L(folded)"
					default:
						cmds += string(p[0])
					}
					w = w[4+n:]
				}
				got = append(got, cmds)
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("writes:\n got %s\nwant %s", g, tc.want)
			}
			if wantBody := strings.ReplaceAll(body, "\n", "\r\n"); string(bodyGot) != wantBody {
				t.Errorf("body: got %d bytes, want %d", len(bodyGot), len(wantBody))
			}
			if len(chunks) != 2 || chunks[0] != maxBodyChunk {
				t.Errorf("body chunks %v, want 65535 and the rest", chunks)
			}
		})
	}
}

// TestQueueWritesPieces: commands gathered past postfixWriteSize go out in
// writes of exactly that size, the rest at the next flush.
func TestQueueWritesPieces(t *testing.T) {
	t.Parallel()
	mtaEnd, milterEnd := net.Pipe()
	defer mtaEnd.Close()
	sizes := make(chan int, 10)
	go func() {
		defer close(sizes)
		buf := make([]byte, 1<<20)
		for {
			n, err := milterEnd.Read(buf)
			if err != nil {
				return
			}
			sizes <- n
		}
	}()
	c := &conn{nc: mtaEnd, timeout: 5 * time.Second}
	chunk := appendPacket(nil, milter.CmdBody, make([]byte, maxBodyChunk))
	for range 3 {
		if err := c.queue(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	mtaEnd.Close()
	var got []int
	for n := range sizes {
		got = append(got, n)
	}
	total := 3 * len(chunk)
	if len(got) != 2 || got[0] != postfixWriteSize || got[0]+got[1] != total {
		t.Errorf("writes of %v bytes, want %d and %d", got, postfixWriteSize, total-postfixWriteSize)
	}
}

// fakeMilter answers option negotiation granting the protocol flags
// granted, every command the MTA then waits for with continue and end of
// message with accept, and sends each write it reads (one read never spans
// two writes of a net.Pipe) to writes.
func fakeMilter(nc net.Conn, granted milter.OptProtocol, writes chan<- []byte) {
	fakeMilterEOH(nc, granted, writes, 0)
}

// fakeMilterEOH is fakeMilter taking eohDelay before it answers the end
// of the header, as a milter that fetches keys there.
func fakeMilterEOH(nc net.Conn, granted milter.OptProtocol, writes chan<- []byte, eohDelay time.Duration) {
	defer close(writes)
	defer nc.Close()
	noReply := map[byte]milter.OptProtocol{milter.CmdConnect: milter.OptNoConnReply, milter.CmdHelo: milter.OptNoHeloReply, milter.CmdMail: milter.OptNoMailReply, milter.CmdRcpt: milter.OptNoRcptReply,
		milter.CmdData: milter.OptNoDataReply, milter.CmdHeader: milter.OptNoHeaderReply, milter.CmdEndOfHeaders: milter.OptNoEOHReply, milter.CmdBody: milter.OptNoBodyReply}
	buf := make([]byte, 1<<20)
	for {
		n, err := nc.Read(buf)
		if err != nil {
			return
		}
		w := bytes.Clone(buf[:n])
		writes <- w
		for p := w; len(p) >= 5; p = p[min(4+int(binary.BigEndian.Uint32(p)), len(p)):] {
			switch cmd := p[4]; cmd {
			case milter.CmdOptNeg:
				data := binary.BigEndian.AppendUint32(nil, offerVersion)
				data = binary.BigEndian.AppendUint32(data, uint32(offerActions))
				data = binary.BigEndian.AppendUint32(data, uint32(granted))
				nc.Write(appendPacket(nil, milter.CmdOptNeg, data))
			case milter.CmdEndOfMessage:
				nc.Write(appendPacket(nil, milter.RespAccept))
			case milter.CmdQuit:
				return
			default:
				if flag, ok := noReply[cmd]; ok && granted&flag == 0 {
					if cmd == milter.CmdEndOfHeaders {
						time.Sleep(eohDelay)
					}
					nc.Write(appendPacket(nil, milter.RespContinue))
				}
			}
		}
	}
}

// timedConn notes when each read returned.
type timedConn struct {
	net.Conn
	times chan<- time.Time
}

func (t timedConn) Read(b []byte) (int, error) {
	n, err := t.Conn.Read(b)
	if err == nil {
		t.times <- time.Now()
	}
	return n, err
}

// TestGapBetweenEnvelopeAndContent: with --gap, the content is written
// that long after the envelope, in one write, and the wait after end of
// message is reported apart from the time since MAIL.
func TestGapBetweenEnvelopeAndContent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	eml := "From: a@sender.example\nSubject: one\nTo: b@rcpt.example\n\nHello.\n"
	env := `{"client_ip": "192.0.2.7", "helo": "mx.sender.example", "mail_from": "a@sender.example", "rcpts": ["b@rcpt.example"]}`
	for name, data := range map[string]string{"m.eml": eml, "m.env": env} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := loadMail(filepath.Join(dir, "m.eml"), filepath.Join(dir, "m.env"))
	if err != nil {
		t.Fatal(err)
	}
	const allNR = milter.OptNoConnReply | milter.OptNoHeloReply | milter.OptNoMailReply | milter.OptNoRcptReply | milter.OptNoDataReply | milter.OptNoHeaderReply | milter.OptNoEOHReply | milter.OptNoBodyReply
	const gap = 80 * time.Millisecond
	mtaEnd, milterEnd := net.Pipe()
	defer mtaEnd.Close()
	writes := make(chan []byte, 100)
	times := make(chan time.Time, 100)
	go fakeMilter(timedConn{milterEnd, times}, allNR, writes)
	c := &conn{nc: mtaEnd, r: bufio.NewReader(mtaEnd), timeout: 5 * time.Second, gap: gap}
	if err := c.negotiate(); err != nil {
		t.Fatal(err)
	}
	if done, _, err := c.connect(m, "mx.inbound.example"); done || err != nil {
		t.Fatalf("connect: done %v, %v", done, err)
	}
	o, total, eomWait, err := c.transaction(m, queueID(1), "mx.inbound.example", false)
	if err != nil || o.action != "accept" {
		t.Fatalf("transaction: %+v, %v", o, err)
	}
	c.quit()
	var at []time.Time
	for range writes {
		at = append(at, <-times)
	}
	// Negotiation; the envelope; the content; QUIT.
	if len(at) != 4 {
		t.Fatalf("%d writes, want 4", len(at))
	}
	if d := at[2].Sub(at[1]); d < gap {
		t.Errorf("content %v after the envelope, want at least %v", d, gap)
	}
	if total < gap || eomWait <= 0 || eomWait > total-gap {
		t.Errorf("MAIL to reply %v, after end of message %v: want the gap (%v) in the first only", total, eomWait, gap)
	}
}

// TestWaitAfterDotCountsHeaderReplies: a milter that answers every header
// and works at the end of the header (as OpenDKIM fetches keys there)
// keeps the SMTP client waiting after its final dot for that work too: the
// wait is counted from the start of the content, not from end of message.
func TestWaitAfterDotCountsHeaderReplies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	eml := "From: a@sender.example\nSubject: one\nTo: b@rcpt.example\n\nHello.\n"
	env := `{"client_ip": "192.0.2.7", "helo": "mx.sender.example", "mail_from": "a@sender.example", "rcpts": ["b@rcpt.example"]}`
	for name, data := range map[string]string{"m.eml": eml, "m.env": env} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := loadMail(filepath.Join(dir, "m.eml"), filepath.Join(dir, "m.env"))
	if err != nil {
		t.Fatal(err)
	}
	// Replies wanted for everything of the content, as libmilter's milters.
	const envelopeNR = milter.OptNoConnReply | milter.OptNoHeloReply | milter.OptNoMailReply | milter.OptNoRcptReply | milter.OptNoDataReply
	const gap, eoh = 20 * time.Millisecond, 60 * time.Millisecond
	mtaEnd, milterEnd := net.Pipe()
	defer mtaEnd.Close()
	writes := make(chan []byte, 100)
	go fakeMilterEOH(milterEnd, envelopeNR, writes, eoh)
	go func() {
		for range writes {
		}
	}()
	c := &conn{nc: mtaEnd, r: bufio.NewReader(mtaEnd), timeout: 5 * time.Second, gap: gap}
	if err := c.negotiate(); err != nil {
		t.Fatal(err)
	}
	if done, _, err := c.connect(m, "mx.inbound.example"); done || err != nil {
		t.Fatalf("connect: done %v, %v", done, err)
	}
	o, total, wait, err := c.transaction(m, queueID(1), "mx.inbound.example", false)
	if err != nil || o.action != "accept" {
		t.Fatalf("transaction: %+v, %v", o, err)
	}
	c.quit()
	if wait < eoh || wait > total-gap {
		t.Errorf("wait after the dot %v (MAIL to reply %v): want at least the milter's %v at the end of the header, without the gap %v", wait, total, eoh, gap)
	}
}
