package milter

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
)

// startServer runs a milter Server for e on 127.0.0.1 until the test ends.
func startServer(t *testing.T, e *Engine) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{
		NewSession:  (&Handler{Engine: func() *Engine { return e }}).NewSession,
		IdleTimeout: 10 * time.Second,
		Actions:     Actions,
		Protocol:    Protocol,
		SymList:     SymList,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv, ln.Addr().String()
}

func newClientSession(t *testing.T, addr string) *gomilter.ClientSession {
	t.Helper()
	c := gomilter.NewClientWithOptions("tcp", addr, gomilter.ClientOptions{
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		// Within what a version 2 milter may negotiate, as Postfix does.
		ActionMask: gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine,
	})
	s, err := c.Session()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sendMessage runs one transaction on s and returns the final action and
// the header modifications.
func sendMessage(t *testing.T, s *gomilter.ClientSession, mailFrom, msg string) (*gomilter.Action, []gomilter.ModifyAction) {
	t.Helper()
	must := func(a *gomilter.Action, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if a.Code != gomilter.ActContinue {
			t.Fatalf("unexpected early action %+v", a)
		}
	}
	must(s.Mail("<"+mailFrom+">", nil))
	must(s.Rcpt("<bob@mx.test>", nil))
	head, body, _ := strings.Cut(msg, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue // the tests' messages are unfolded
		}
		k, v, _ := strings.Cut(line, ":")
		must(s.HeaderField(k, strings.TrimPrefix(v, " ")))
	}
	must(s.HeaderEnd())
	must(s.BodyChunk([]byte(body)))
	mods, act, err := s.End()
	if err != nil {
		t.Fatal(err)
	}
	return act, mods
}

// TestSessionTwoMessagesOneConnection: the second message on an SMTP
// connection is judged with the client address and HELO of the connection,
// after the first was rejected (go-milter makes a new Milter after final
// responses, which never sees Connect or Helo again).
func TestSessionTwoMessagesOneConnection(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, addr := startServer(t, w.engine())
	s := newClientSession(t, addr)
	if _, err := s.Conn("mail.example.com", gomilter.FamilyInet, 40000, "192.0.2.10"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Helo("helo.example.com"); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		act, _ := sendMessage(t, s, "someone@relaxed.example", msgText("example.com", "", "Hi.\r\n"))
		if act.Code != gomilter.ActReplyCode || act.SMTPCode != 550 || !strings.Contains(act.SMTPText, "5.7.1") {
			t.Fatalf("round %d: first message: %+v, want a 550 5.7.1 reply", round, act)
		}
		act, mods := sendMessage(t, s, "alice@example.com", msgText("example.com", "Authentication-Results: mx.test; spf=pass\r\n", "Hi.\r\n"))
		if act.Code != gomilter.ActAccept {
			t.Fatalf("round %d: second message: %+v", round, act)
		}
		var ar string
		var removed []uint32
		for _, m := range mods {
			switch {
			case m.Code == gomilter.ActInsertHeader && m.HeaderName == "Authentication-Results":
				ar = m.HeaderValue
			case m.Code == gomilter.ActChangeHeader && m.HeaderName == "Authentication-Results" && m.HeaderValue == "":
				removed = append(removed, m.HeaderIndex)
			}
		}
		for _, want := range []string{"spf=pass", "smtp.mailfrom=alice@example.com", "smtp.helo=helo.example.com", "dmarc=pass"} {
			if !strings.Contains(ar, want) {
				t.Errorf("round %d: A-R %q lacks %q (client facts lost?)", round, ar, want)
			}
		}
		if len(removed) != 1 || removed[0] != 1 {
			t.Errorf("round %d: forged A-R removals %v, want [1]", round, removed)
		}
	}
}

func TestSessionGarbageDoesNotHurtOthers(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv, addr := startServer(t, w.engine())
	for _, junk := range [][]byte{
		[]byte("GET / HTTP/1.0\r\n\r\n"),
		{0xff, 0xff, 0xff, 0xff, 'O'}, // 4 GiB packet announced
		{0, 0, 0, 0},                  // zero-length packet
		{0, 0, 0, 5, 'M', 'a'},        // truncated
		{0, 0, 0, 2, 'Z', 0},          // unknown command
		{0, 0, 0, 3, 'C', 'x', 0},     // malformed connect
		{0, 0, 0, 1, 'B'},             // body without a message
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(junk)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		var buf [64]byte
		c.Read(buf[:])
		c.Close()
	}
	// A well-behaved session still works.
	s := newClientSession(t, addr)
	if _, err := s.Conn("mail.example.com", gomilter.FamilyInet, 40000, "192.0.2.10"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Helo("helo.example.com"); err != nil {
		t.Fatal(err)
	}
	act, _ := sendMessage(t, s, "alice@example.com", msgText("example.com", "", "Hi.\r\n"))
	if act.Code != gomilter.ActAccept {
		t.Fatalf("after garbage: %+v", act)
	}
	_ = srv
}

// TestSessionDisconnectMidBody: an MTA that goes away in the middle of a
// body leaves nothing running.
func TestSessionDisconnectMidBody(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv, addr := startServer(t, w.engine())
	s := newClientSession(t, addr)
	s.Conn("mail.example.com", gomilter.FamilyInet, 40000, "192.0.2.10")
	s.Helo("helo.example.com")
	s.Mail("<alice@example.com>", nil)
	s.HeaderField("From", "alice@example.com")
	s.HeaderEnd()
	s.BodyChunk([]byte("partial"))
	s.Close()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Active() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still active", srv.Active())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
