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
)

// TestOneWritePerCommand drives one connection over a net.Pipe, whose
// reads never join two writes, and checks that every write holds exactly
// one milter command, preceded by its macros when it has any, as Postfix's
// milter8 flushes after each command; a full body chunk (65535 bytes) is
// one write too. It also checks what each command carries, so encoding
// packets once per corpus load cannot change the bytes.
func TestOneWritePerCommand(t *testing.T) {
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

	mtaEnd, milterEnd := net.Pipe()
	defer mtaEnd.Close()
	writes := make(chan []byte, 100)
	go fakeMilter(milterEnd, writes)

	c := &conn{nc: mtaEnd, r: bufio.NewReader(mtaEnd), timeout: 5 * time.Second}
	if err := c.negotiate(); err != nil {
		t.Fatal(err)
	}
	if done, _, err := c.connect(m, "mx.inbound.example"); done || err != nil {
		t.Fatalf("connect: done %v, %v", done, err)
	}
	o, _, err := c.transaction(m, queueID(1), "mx.inbound.example", false)
	if err != nil || o.action != "accept" {
		t.Fatalf("transaction: %+v, %v", o, err)
	}
	c.quit()

	// Each write: its commands (a macro packet names the command it
	// belongs to) and the data of the last one.
	var got []string
	var bodyGot []byte
	var chunks []int
	for w := range writes {
		var cmds string
		var last []byte
		for len(w) > 0 {
			if len(w) < 5 {
				t.Fatalf("write ends in a partial packet: %q", w)
			}
			n := binary.BigEndian.Uint32(w)
			if int(n) > len(w)-4 {
				t.Fatalf("packet of %d bytes split across writes", n)
			}
			p := w[4 : 4+n]
			if p[0] == cmdMacro {
				cmds += "D" + string(p[1]) + "+"
			} else {
				cmds += string(p[0])
			}
			last, w = p, w[4+n:]
		}
		got = append(got, cmds)
		switch last[0] {
		case cmdBody:
			chunks = append(chunks, len(last)-1)
			bodyGot = append(bodyGot, last[1:]...)
		case cmdHeader:
			if string(last) == "LSubject\x00 one\n two\x00" { // SMFIP_HDR_LEADSPC
				got[len(got)-1] += "(folded)"
			}
		}
	}
	want := "O DC+C H DM+M DR+R DT+T L L(folded) L DN+N B B DE+E Q"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("writes:\n got %s\nwant %s", g, want)
	}
	if wantBody := strings.ReplaceAll(body, "\n", "\r\n"); string(bodyGot) != wantBody {
		t.Errorf("body: got %d bytes, want %d", len(bodyGot), len(wantBody))
	}
	if len(chunks) != 2 || chunks[0] != maxBodyChunk {
		t.Errorf("body chunks %v, want 65535 and the rest", chunks)
	}
}

// fakeMilter answers option negotiation with every SMFIP_NR_* flag and
// SMFIP_HDR_LEADSPC, end of message with accept, and sends each write it
// reads (one read never spans two writes of a net.Pipe) to writes.
func fakeMilter(nc net.Conn, writes chan<- []byte) {
	defer close(writes)
	defer nc.Close()
	const granted = pNRConn | pNRHelo | pNRMail | pNRRcpt | pNRData | pNoHdrReply | pNREOH | pNRBody | pLeadSpace
	buf := make([]byte, 1<<20)
	for {
		n, err := nc.Read(buf)
		if err != nil {
			return
		}
		w := bytes.Clone(buf[:n])
		writes <- w
		var last byte
		for p := w; len(p) >= 5; p = p[min(4+int(binary.BigEndian.Uint32(p)), len(p)):] {
			last = p[4]
		}
		switch last {
		case cmdOptNeg:
			data := binary.BigEndian.AppendUint32(nil, offerVersion)
			data = binary.BigEndian.AppendUint32(data, offerActions)
			data = binary.BigEndian.AppendUint32(data, granted)
			nc.Write(appendPacket(nil, cmdOptNeg, data))
		case cmdEOM:
			nc.Write(appendPacket(nil, replyAccept))
		case cmdQuit:
			return
		}
	}
}
