package engine

import (
	"encoding/binary"
	"strings"

	"github.com/authmilter/authmilter/milter"
)

// cmdPacket encodes one milter command: 4-byte big-endian length, the command
// byte, the payload.
func cmdPacket(code byte, payload ...string) []byte {
	p := strings.Join(payload, "")
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(p)))
	b = append(b, code)
	return append(b, p...)
}

// cmdOptneg is what Postfix offers: version 6, every action, every protocol bit.
func cmdOptneg(protocol uint32) []byte {
	var p []byte
	p = binary.BigEndian.AppendUint32(p, 6)
	p = binary.BigEndian.AppendUint32(p, 0x1ff)
	p = binary.BigEndian.AppendUint32(p, protocol)
	return cmdPacket(milter.CmdOptNeg, string(p))
}

func cmdConnect(host string, family byte, port uint16, addr string) []byte {
	p := host + "\x00" + string(family)
	if family == milter.FamilyInet || family == milter.FamilyInet6 {
		p += string(binary.BigEndian.AppendUint16(nil, port))
	}
	return cmdPacket(milter.CmdConnect, p+addr+"\x00")
}

func cmdMacros(stage byte, kv ...string) []byte {
	return cmdPacket(milter.CmdMacro, string(stage)+strings.Join(kv, "\x00")+"\x00")
}

// cmdHeader is an SMFIC_HEADER packet as Postfix sends it with
// SMFIP_HDR_LEADSPC: the value keeps its leading space, folds are LF.
func cmdHeader(name, value string) []byte {
	return cmdPacket(milter.CmdHeader, name+"\x00"+value+"\x00")
}

// cmdNormalStream is one ordinary transaction as Postfix sends it, up to the
// end of message.
func cmdNormalStream(mailFrom, from, body string) []byte {
	var s []byte
	s = append(s, cmdOptneg(0x1fffff)...)
	s = append(s, cmdMacros(milter.CmdConnect, "j", "mx.test", "{daemon_name}", "mx")...)
	s = append(s, cmdConnect("mail.example.com", milter.FamilyInet, 40000, "192.0.2.10")...)
	s = append(s, cmdPacket(milter.CmdHelo, "helo.example.com\x00")...)
	s = append(s, cmdMacros(milter.CmdMail, "i", "4XyZ1", "{mail_addr}", mailFrom)...)
	s = append(s, cmdPacket(milter.CmdMail, "<"+mailFrom+">\x00", "SIZE=100\x00")...)
	s = append(s, cmdPacket(milter.CmdRcpt, "<bob@mx.test>\x00")...)
	for _, h := range [][2]string{
		{"From", " " + from},
		{"To", " bob@mx.test"},
		{"Subject", " test"},
		{"Date", " Tue, 24 Nov 2026 08:00:00 +0000"},
		{"Message-ID", " <1@example.com>"},
	} {
		s = append(s, cmdHeader(h[0], h[1])...)
	}
	s = append(s, cmdPacket(milter.CmdEndOfHeaders)...)
	s = append(s, cmdPacket(milter.CmdBody, body)...)
	s = append(s, cmdPacket(milter.CmdEndOfMessage)...)
	return s
}

// Samples the structured generator starts from: realistic values the fuzzer
// extends with bytes of its own.
var (
	sampleHosts = []string{"mail.example.com", "unknown", "[192.0.2.10]", "", "h\r\nx"}
	sampleAddrs = []string{"192.0.2.10", "198.51.100.7", "2001:db8::1", "IPv6:2001:db8::1", "", "127.0.0.1", "::ffff:192.0.2.10"}
	sampleHELOs = []string{"helo.example.com", "[192.0.2.10]", "", "example.com", "helo.example.com\r\nX: y"}
	sampleMail  = []string{
		"alice@example.com", "", "someone@quarantined.example", "x@hostile.example",
		"bounce@tempfail.example", "\"a b;c\"@example.com", "a@b@c", "postmaster",
	}
	sampleMacros = [][2]string{
		{"i", "4XyZ1"}, {"{auth_authen}", "alice"}, {"{client_addr}", "IPv6:2001:db8::1"},
		{"{mail_addr}", "alice@example.com"}, {"j", "mx.test"}, {"{client_name}", "mail.example.com"},
	}
	sampleHeaders = [][2]string{
		{"From", " Alice <alice@example.com>"},
		{"From", " a@quarantined.example, b@example.com"},
		{"From", " =?utf-8?q?Al=C3=AFce?= <alice@hostile.example>"},
		{"Authentication-Results", " mx.test; spf=pass smtp.mailfrom=example.com"},
		{"authentication-results", " (c) \"mx.test.\"; dkim=pass"},
		{"Authentication-Results", " other.example; dmarc=pass"},
		{"DKIM-Signature", " v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com; s=sel;\n\th=from:to:subject; bh=frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=; b=AAAA"},
		{"DKIM-Signature", " v=1; a=rsa-sha256; d=hostile.example; s=sel; h=from; bh=AA==; b=AA=="},
		{"ARC-Seal", " i=1; a=ed25519-sha256; cv=none; d=forwarder.test; s=seal; t=1; b=AAAA"},
		{"ARC-Message-Signature", " i=1; a=ed25519-sha256; c=relaxed/relaxed; d=forwarder.test; s=seal; h=from; bh=AA==; b=AA=="},
		{"ARC-Authentication-Results", " i=1; forwarder.test; dmarc=pass"},
		{"Received-SPF", " pass (mx.test: domain of example.com designates 192.0.2.10 as permitted sender)"},
		{"Subject", " a\n\tfolded subject"},
		{"To", " bob@mx.test"},
		{"X-Empty", ""},
	}
)

// cmdPick returns samples[arg[0]] (modulo) followed by the rest of arg.
func cmdPick(samples []string, arg []byte) string {
	if len(arg) == 0 {
		return samples[0]
	}
	return samples[int(arg[0])%len(samples)] + string(arg[1:])
}

// genStream turns fuzz bytes into a milter command stream. Each step is an
// opcode byte, a length byte and that many payload bytes, the payload being
// built into a valid-looking command of the opcode's kind; a step may also
// be a raw packet or a cut-off one, which ends the stream.
func genStream(data []byte) []byte {
	var out []byte
	for len(data) > 0 {
		op := data[0]
		data = data[1:]
		n := 0
		if len(data) > 0 {
			n = min(int(data[0]), len(data)-1)
			data = data[1:]
		}
		arg := data[:n]
		data = data[n:]
		b0 := byte(0)
		if len(arg) > 0 {
			b0 = arg[0]
		}
		switch op % 16 {
		case 0:
			var proto uint32
			if len(arg) >= 4 {
				proto = binary.BigEndian.Uint32(arg)
			}
			out = append(out, cmdOptneg(proto)...)
		case 1:
			fam := "46LU"[int(b0)%4]
			var rest []byte
			if len(arg) > 1 {
				rest = arg[1:]
			}
			out = append(out, cmdConnect(cmdPick(sampleHosts, rest), fam, uint16(b0)<<8, cmdPick(sampleAddrs, rest))...)
		case 2:
			out = append(out, cmdPacket(milter.CmdHelo, cmdPick(sampleHELOs, arg)+"\x00")...)
		case 3:
			out = append(out, cmdPacket(milter.CmdMail, "<"+cmdPick(sampleMail, arg)+">\x00")...)
		case 4:
			out = append(out, cmdPacket(milter.CmdRcpt, "<"+cmdPick(sampleMail, arg)+">\x00")...)
		case 5:
			h := sampleHeaders[int(b0)%len(sampleHeaders)]
			v := h[1]
			if len(arg) > 1 {
				v += string(arg[1:])
			}
			out = append(out, cmdHeader(h[0], v)...)
		case 6:
			out = append(out, cmdPacket(milter.CmdEndOfHeaders)...)
		case 7:
			out = append(out, cmdPacket(milter.CmdBody, string(arg))...)
		case 8:
			out = append(out, cmdPacket(milter.CmdEndOfMessage)...)
		case 9:
			out = append(out, cmdPacket(milter.CmdAbort)...)
		case 10:
			out = append(out, cmdPacket(milter.CmdQuit)...)
		case 11:
			kv := sampleMacros[int(b0)%len(sampleMacros)]
			v := kv[1]
			if len(arg) > 1 {
				v = string(arg[1:])
			}
			out = append(out, cmdMacros("CHMRLNBEA"[int(b0)%9], kv[0], v)...)
		case 12:
			// DATA, QUIT_NC (a new SMTP connection follows), UNKNOWN.
			out = append(out, cmdPacket("TKU"[int(b0)%3], string(arg))...)
		case 13:
			if len(arg) > 0 {
				out = append(out, cmdPacket(arg[0], string(arg[1:]))...)
			}
		case 14:
			from := cmdPick(sampleMail, arg)
			out = append(out, cmdNormalStream(from, "<"+from+">", string(arg))...)
		case 15:
			// A packet announcing more than follows: the client stops here.
			out = binary.BigEndian.AppendUint32(out, uint32(len(arg))+1+uint32(b0))
			return append(out, arg...)
		}
	}
	return out
}

// sessionSeed is one seed of FuzzSession.
type sessionSeed struct {
	structured bool
	writes     uint8
	data       []byte
}

// sessionSeeds are the seeds kept in code (those under testdata/fuzz are
// whole raw streams): the normal session, the junk of
// TestSessionGarbageDoesNotHurtOthers, and generator programs for the
// sequences that have gone wrong in milters before.
func sessionSeeds() []sessionSeed {
	normal := cmdNormalStream("alice@example.com", "Alice <alice@example.com>", "Hi.\r\n")
	seeds := []sessionSeed{
		{false, 0, normal},
		{false, 0, normal[:len(normal)-3]}, // cut in the last packet
		{false, 4, normal},                 // client gone during the answers
		{false, 0, append(normal, normal[len(cmdOptneg(0)):]...)}, // two messages, second without optneg
		{false, 0, []byte("GET / HTTP/1.0\r\n\r\n")},
		{false, 0, []byte{0xff, 0xff, 0xff, 0xff, 'O'}},
		{false, 0, []byte{0, 0, 0, 0}},
		{false, 0, []byte{0, 0, 0, 2, 'Z', 0}},
		{false, 0, []byte{0, 0, 0, 3, 'C', 'x', 0}},
		{false, 0, []byte{0, 0, 0, 1, 'B'}},
	}
	for _, prog := range []string{
		"\x0e\x01\x00", // one normal message (null sender)
		"\x00\x00\x01\x00\x02\x00\x03\x01\x03\x05\x01\x08\x08\x00", // optneg, connect, helo, mail, header, EOM (no EOH)
		"\x0e\x01\x02\x0e\x01\x00",                                 // quarantine, then a pass on the same connection
		"\x03\x01\x00\x05\x01\x06\x07\x03abc\x0f\x02\x09x",         // mail, header, body, cut packet
		"\x03\x01\x03\x05\x01\x03\x05\x01\x04\x06\x00\x08\x00",     // forged A-R variants then EOM
		"\x0b\x02\x01\x03\x03\x01\x03\x09\x00\x03\x01\x00\x08\x00", // auth macro, mail, abort, mail, EOM
		"\x05\x01\x07\x08\x00\x08\x00\x0a\x00",                     // header without mail, EOM twice, quit
	} {
		seeds = append(seeds, sessionSeed{true, 0, []byte(prog)})
	}
	return seeds
}
