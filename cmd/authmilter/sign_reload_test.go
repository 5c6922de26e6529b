package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/authmilter/authmilter/dnscache/dnstest"
	"github.com/authmilter/authmilter/internal/testsupport/syncbuf"
)

// insertedSignature sends one message from ip through the milter at addr
// and returns the DKIM-Signature it inserted ("" when none).
func insertedSignature(t *testing.T, addr, ip string) string {
	t.Helper()
	mods, _ := milterSend(t, addr, ip, "app.example", "app@example.com", "app@example.com", "reload")
	for _, m := range mods {
		if m.Code == gomilter.ActInsertHeader && m.HeaderName == "DKIM-Signature" {
			return m.HeaderValue
		}
	}
	return ""
}

// TestServeReloadSigningKeys: a selector rotation is a configuration
// change and a SIGHUP; a reload with a key file others can read is refused
// and the running keys kept.
func TestServeReloadSigningKeys(t *testing.T) {
	t.Parallel()
	dns := dnstest.Serve(t, &dnstest.Resolver{TXT: map[string][]string{}})
	dir := t.TempDir()
	keyFile := func(name string, mode os.FileMode) string {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfgText := func(selector, key string) string {
		return "listen: inet:127.0.0.1:0\nauthserv_id: mx.test\npolicy: {internal_networks: [10.0.0.0/8]}\n" +
			"dns: {servers: [\"" + dns + "\"]}\ndkim:\n  sign:\n    keys:\n      - {domain: example.com, selector: " + selector + ", key_file: " + key + "}\n"
	}
	path := writeConfig(t, cfgText("one", keyFile("one.key", 0o600)))
	logs := &syncbuf.Buffer{}
	hup := make(chan os.Signal, 1)
	ready := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, path, logs, hup, func(a net.Addr) { ready <- a }) }()
	var addr string
	select {
	case a := <-ready:
		addr = a.String()
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start in 10s")
	}
	waitLog := func(s string, n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); strings.Count(logs.String(), s) < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("log never said %q %d times:\n%s", s, n, logs.String())
			}
		}
	}
	if sig := insertedSignature(t, addr, "10.1.2.3"); !strings.Contains(sig, "s=one;") {
		t.Fatalf("before reload: %q", sig)
	}
	if sig := insertedSignature(t, addr, "192.0.2.1"); sig != "" {
		t.Fatalf("judged mail signed: %q", sig)
	}

	os.WriteFile(path, []byte(cfgText("two", keyFile("two.key", 0o600))), 0o600)
	hup <- syscall.SIGHUP
	waitLog("configuration reloaded", 1)
	if sig := insertedSignature(t, addr, "10.1.2.3"); !strings.Contains(sig, "s=two;") {
		t.Fatalf("after reload: %q", sig)
	}

	os.WriteFile(path, []byte(cfgText("three", keyFile("three.key", 0o644))), 0o600)
	hup <- syscall.SIGHUP
	waitLog("configuration not reloaded", 1)
	if !strings.Contains(logs.String(), "three.key has mode 0644") {
		t.Errorf("the reload error does not name the key file and its mode:\n%s", logs.String())
	}
	if sig := insertedSignature(t, addr, "10.1.2.3"); !strings.Contains(sig, "s=two;") {
		t.Fatalf("after a refused reload: %q (running keys not kept)", sig)
	}
	if !strings.Contains(logs.String(), "dkim_signed=example.com:two:ed25519-sha256") {
		t.Errorf("message log lacks dkim_signed:\n%s", logs.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
