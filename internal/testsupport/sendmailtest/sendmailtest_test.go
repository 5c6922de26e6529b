package sendmailtest

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/authmilter/authmilter/milter"
)

func TestPacketDecoding(t *testing.T) {
	// Sendmail's connect for an IPv6 client, as recorded from 8.17.1.
	data := []byte("localhost\x006\xc0\x01IPv6:0:0:0:0:0:0:0:1\x00")
	h, fam, port, addr, err := Packet{Cmd: milter.CmdConnect, Data: data}.Connect()
	if err != nil || h != "localhost" || fam != milter.FamilyInet6 || port != 0xc001 || addr != "IPv6:0:0:0:0:0:0:0:1" {
		t.Errorf("Connect() = %q %q %d %q %v", h, fam, port, addr, err)
	}
	if _, _, _, _, err := (Packet{Cmd: milter.CmdConnect, Data: []byte("x\x006\x01")}).Connect(); err == nil {
		t.Error("truncated connect packet decoded")
	}

	c, pairs, err := Packet{Cmd: milter.CmdMacro, Data: []byte("C{client_addr}\x00127.0.0.1\x00j\x00mx\x00")}.Macros()
	if err != nil || c != milter.CmdConnect || len(pairs) != 2 || pairs[0] != [2]string{"{client_addr}", "127.0.0.1"} || pairs[1] != [2]string{"j", "mx"} {
		t.Errorf("Macros() = %q %q %v", c, pairs, err)
	}

	neg := make([]byte, 12)
	binary.BigEndian.PutUint32(neg, 2)
	binary.BigEndian.PutUint32(neg[4:], 0x131)
	binary.BigEndian.PutUint32(neg[8:], 0x100300)
	neg = binary.BigEndian.AppendUint32(neg, 0)
	neg = append(neg, "j {client_addr}\x00"...)
	v, a, p, sl, err := Packet{Cmd: milter.CmdOptNeg, Data: neg}.Negotiation()
	if err != nil || v != 2 || a != 0x131 || p != 0x100300 || sl[0] != "j {client_addr}" {
		t.Errorf("Negotiation() = %d %#x %#x %v %v", v, a, p, sl, err)
	}
	if s := (Packet{Conn: 1, FromMTA: true, Cmd: milter.CmdConnect, Data: data}).String(); !strings.Contains(s, `addr="IPv6:0:0:0:0:0:0:0:1"`) {
		t.Errorf("String() = %s", s)
	}
}

func TestMC(t *testing.T) {
	in := &Instance{opts: Options{Milter: "inet:9@127.0.0.1", MilterFlags: "T", MilterTimeouts: "C:1s", IPv6: true, LocalDomain: "example.test"},
		dir: "/d", port: 2525, port6: 2526}
	mc := in.MC()
	for _, want := range []string{
		"OSTYPE(`linux')",
		"DAEMON_OPTIONS(`Family=inet, Addr=127.0.0.1, Port=2525, Name=MTA-v4')",
		"DAEMON_OPTIONS(`Family=inet6, Addr=::1, Port=2526, Name=MTA-v6')",
		"INPUT_MAIL_FILTER(`authmilter', `S=inet:9@127.0.0.1, F=T, T=C:1s')",
		"define(`confSERVICE_SWITCH_FILE', `/d/service.switch')",
		"FEATURE(`nocanonify')",
		"MAILER(`local')",
	} {
		if !strings.Contains(mc, want) {
			t.Errorf("sendmail.mc lacks %q:\n%s", want, mc)
		}
	}
	in.opts.IPv6, in.opts.Milter = false, ""
	if mc := in.MC(); strings.Contains(mc, "inet6") || strings.Contains(mc, "INPUT_MAIL_FILTER") {
		t.Errorf("sendmail.mc without IPv6 and milter:\n%s", mc)
	}
}
