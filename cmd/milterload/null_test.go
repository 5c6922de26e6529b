package main

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/internal/testsupport/syncbuf"
)

// TestNullMilter: `milterload null` serves the protocol on a loopback
// port, accepts every message with one header change, refuses a
// non-loopback listener, and stops cleanly when its context ends.
func TestNullMilter(t *testing.T) {
	t.Parallel()
	dir, c := tinyCorpus(t)
	// A free port, then released for the null milter to take.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- nullMain(ctx, []string{"--listen", "inet:" + addr}, &stderr) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("not listening: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	n := 2 * len(c.Messages)
	r := runJSON(t, "--milter", "inet:"+addr, "-c", "2", "-n", strconv.Itoa(n), "-d", "20s", dir)
	if r.Messages != n || r.Errors != 0 || r.Actions["accept"] != n || r.HeadersAdd != n {
		t.Errorf("messages %d, errors %d (%s), actions %v, header changes %d; want %d accepted with one change each",
			r.Messages, r.Errors, r.FirstError, r.Actions, r.HeadersAdd, n)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("null milter did not stop")
	}
	if err := nullMain(context.Background(), []string{"--listen", "inet:192.0.2.1:8896"}, &stderr); err == nil {
		t.Error("a non-loopback listener was accepted")
	}
}
