package smtptest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeMTA answers each command line from replies (keyed by the command's
// first word, or "." for the end of data) and records the lines it read.
func fakeMTA(t *testing.T, replies map[string]string) (addr string, lines chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	lines = make(chan string, 100)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		defer close(lines)
		br := bufio.NewReader(conn)
		_, _ = conn.Write([]byte("220-mx.example.test ESMTP\r\n220 second line\r\n"))
		inData := false
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			l = strings.TrimRight(l, "\r\n")
			lines <- l
			key := strings.ToUpper(strings.Fields(l + " x")[0])
			if inData {
				if l != "." {
					continue
				}
				inData, key = false, "."
			}
			if strings.HasPrefix(key, "RCPT") {
				key = "RCPT " + l[strings.Index(l, "<"):]
			}
			r, ok := replies[key]
			if !ok {
				r = "250 ok"
			}
			if key == "DATA" && strings.HasPrefix(r, "354") {
				inData = true
			}
			_, _ = conn.Write([]byte(strings.ReplaceAll(r, "\n", "\r\n") + "\r\n"))
			if key == "QUIT" {
				return
			}
		}
	}()
	return ln.Addr().String(), lines
}

func TestSession(t *testing.T) {
	addr, lines := fakeMTA(t, map[string]string{
		"EHLO":                  "250-mx.example.test\n250 8BITMIME",
		"RCPT <no@example.com>": "550 5.1.1 no such user",
		"DATA":                  "354 go ahead",
		".":                     "250 2.0.0 Ok: queued as ABC",
		"QUIT":                  "221 bye",
	})
	c, err := Dial(addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	code, msg, err := c.Reply()
	if err != nil || code != 220 || msg != "mx.example.test ESMTP\nsecond line" {
		t.Fatalf("banner: %d %q %v", code, msg, err)
	}
	if _, _, err := c.Cmd(250, "EHLO %s", "client.example.test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Cmd(221, "NOOP"); err == nil {
		t.Fatal("Cmd: want an error for an unexpected code")
	}
	rs, err := c.Session(
		Mail{MailFrom: "a@example.org", MailParams: "BODY=8BITMIME", Rcpts: []string{"no@example.com", "b@example.com"}, Data: []byte("Subject: x\n\n.dot\n")},
		Mail{MailFrom: "", Rcpts: []string{"no@example.com"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("results: %+v", rs)
	}
	if r := rs[0]; r.Stage != StageEOM || r.Code != 250 || r.Reply != "2.0.0 Ok: queued as ABC" || len(r.RcptCodes) != 2 || r.RcptCodes[0] != 550 || r.RcptCodes[1] != 250 {
		t.Errorf("first: %+v", r)
	}
	if r := rs[1]; r.Stage != StageRcpt || r.Code != 550 || r.Reply != "5.1.1 no such user" {
		t.Errorf("second: %+v", r)
	}
	var got []string
	for l := range lines {
		got = append(got, l)
	}
	want := []string{
		"EHLO client.example.test", "NOOP",
		"MAIL FROM:<a@example.org> BODY=8BITMIME", "RCPT TO:<no@example.com>", "RCPT TO:<b@example.com>", "DATA",
		"Subject: x", "", "..dot", ".",
		"RSET", "MAIL FROM:<>", "RCPT TO:<no@example.com>", "QUIT",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("server read:\n%q\nwant\n%q", got, want)
	}
	if tr := c.Transcript(); !strings.Contains(tr, "S: 220 second line\n") || !strings.Contains(tr, "C: <17 bytes of message>\nC: .\n") {
		t.Errorf("transcript:\n%s", tr)
	}
}

func TestXText(t *testing.T) {
	if got := XText("IPV6:2001:db8::1"); got != "IPV6:2001:db8::1" {
		t.Errorf("XText: %q", got)
	}
	if got := XText("a+b=c d"); got != "a+2Bb+3Dc+20d" {
		t.Errorf("XText: %q", got)
	}
}
