// Package sendmailtest runs a private, throw-away Sendmail for end-to-end
// tests of the milter: Debian's sendmail-bin, unpacked (not installed) into
// a directory of its own, so that it can live beside an installed Postfix.
//
//	sm := sendmailtest.Start(t, sendmailtest.Options{Milter: "inet:12345@127.0.0.1"})
//	r, err := sm.Send(t, sendmailtest.Envelope{HeloName: "mail.example.com",
//		MailFrom: "alice@example.com", Rcpts: []string{"bob@example.test"}}, msg)
//	d := sm.WaitDelivered(t, 1, 10*time.Second)[0]
//
// # Where Sendmail comes from
//
// AUTHMILTER_SENDMAIL_ROOT names the directory into which .ci/run unpacked
// (dpkg -x) sendmail-bin, sendmail-base and sendmail-cf; m4 comes from PATH.
// Start skips the test when either is missing, and when not running as root
// (the daemon binds, forks and switches users as root); it fails instead
// when AUTHMILTER_REQUIRE_INTEROP=1, as in CI.
//
// # The instance
//
// Everything lives under t.TempDir(): sendmail.mc and the sendmail.cf that m4
// builds from it with the unpacked cf/m4/cf.m4, queue/, mail/ (one file per
// delivery) and debug.log. Sendmail runs in the foreground ("sendmail -bD
// -C sendmail.cf") as a child of the test, in its own session, killed by
// t.Cleanup.
//
// Settings and why:
//
//   - Listeners: 127.0.0.1:PORT ("MTA-v4") and, with Options.IPv6,
//     [::1]:PORT6 ("MTA-v6"); no MSA port. Ports come from listening on
//     port 0; Start retries with new ones when Sendmail does not come up.
//   - No DNS at all. Sendmail looks up its own host name before it reads
//     its configuration, and when that name has no dot it asks DNS for a
//     qualified one and, failing, sleeps 60 seconds. It also looks up every
//     client address (PTR). So it runs in private mount and UTS namespaces
//     where the host name is mx.sendmailtest.test, /etc/hosts is a private
//     file naming it, 127.0.0.1 and ::1, and /etc/nsswitch.conf says
//     "hosts: files". The configuration adds a service switch with "hosts
//     files", FEATURE(nocanonify), FEATURE(accept_unresolvable_domains),
//     DontProbeInterfaces and Timeout.ident=0 (no ident connection back).
//   - Local delivery: LOCAL_DOMAIN(example.test) (Options.LocalDomain); the
//     local mailer is a shell script that writes each message into mail/
//     (flags without "w", "A" and "@": no passwd entry, alias or user
//     database needed; "S": it runs as root, so it can write the temporary
//     directory). Mail for any other domain goes to the same mailer
//     (SMART_HOST local:localhost), so that sender addresses in any domain
//     resolve without an SMTP mailer and nothing ever leaves the machine.
//   - DeliveryMode=interactive: the 250 after DATA comes after delivery,
//     so a delivered message is in mail/ when Send returns.
//   - QueueLA and RefuseLA at 1000: a busy machine must not make Sendmail
//     queue or refuse.
//   - The milter: INPUT_MAIL_FILTER(`authmilter', `S=...,
//     F=T, T=C:5s;S:10s;R:10s;E:30s') (Options), Milter.LogLevel=14.
package sendmailtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authmilter/authmilter/internal/testsupport/interop"
	"github.com/authmilter/authmilter/internal/testsupport/postfixtest"
)

// EnvRoot names the directory the Debian packages sendmail-bin,
// sendmail-base and sendmail-cf were unpacked into with dpkg -x.
const EnvRoot = "AUTHMILTER_SENDMAIL_ROOT"

// HostName is the Sendmail instance's host name ($j, the greeting).
const HostName = "mx.sendmailtest.test"

// Options configures a private Sendmail instance.
type Options struct {
	// Milter is the S= equate of INPUT_MAIL_FILTER, e.g.
	// "inet:12345@127.0.0.1". Empty means no milter.
	Milter string
	// MilterFlags is the F= equate: "T" (default; tempfail when the milter
	// is unavailable), "R" (reject) or "-" for none (accept).
	MilterFlags string
	// MilterTimeouts is the T= equate. Default "C:5s;S:10s;R:10s;E:30s".
	MilterTimeouts string

	// IPv6 adds a listener on [::1].
	IPv6 bool

	// LocalDomain is the domain delivered locally. Default "example.test".
	LocalDomain string

	// MC holds raw sendmail.mc lines added before MAILER(`local'), e.g.
	// "define(`confMILTER_MACROS_CONNECT', ``j, {client_addr}'')".
	MC []string

	// Debug is Sendmail's -d argument (e.g. "64.5" for milter tracing),
	// written to debug.log. Empty means none.
	Debug string

	// StartTimeout bounds each attempt to start Sendmail. Default 15s.
	StartTimeout time.Duration
	// SMTPTimeout bounds each command/reply exchange. Default 60s.
	SMTPTimeout time.Duration
}

// Instance is a running private Sendmail.
type Instance struct {
	opts     Options
	root     string // the unpacked packages
	m4       string
	dir      string
	mailDir  string
	debugLog string
	port     int
	port6    int

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	output bytes.Buffer // sendmail's stdout and stderr
}

// Start launches a private Sendmail and returns once it listens.
func Start(t testing.TB, opts Options) *Instance {
	t.Helper()
	root := os.Getenv(EnvRoot)
	if root == "" {
		missing(t, EnvRoot+" is not set: unpack Debian's sendmail-bin, sendmail-base and sendmail-cf with dpkg -x into a directory and name it there (.ci/run does)")
	}
	if _, err := os.Stat(filepath.Join(root, sendmailBin)); err != nil {
		missing(t, EnvRoot+"="+root+" holds no "+sendmailBin+" (dpkg -x sendmail-bin there)")
	}
	if _, err := os.Stat(filepath.Join(root, cfDir, "m4", "cf.m4")); err != nil {
		missing(t, EnvRoot+"="+root+" holds no "+cfDir+"/m4/cf.m4 (dpkg -x sendmail-cf there)")
	}
	m4 := interop.Need(t, "m4", "m4")
	if os.Geteuid() != 0 {
		missing(t, "sendmailtest runs a Sendmail daemon in private namespaces, which needs root")
	}
	if opts.LocalDomain == "" {
		opts.LocalDomain = "example.test"
	}
	if opts.MilterFlags == "" {
		opts.MilterFlags = "T"
	}
	if opts.MilterTimeouts == "" {
		opts.MilterTimeouts = "C:5s;S:10s;R:10s;E:30s"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 15 * time.Second
	}
	if opts.SMTPTimeout == 0 {
		opts.SMTPTimeout = 60 * time.Second
	}
	dir := t.TempDir()
	in := &Instance{
		opts:     opts,
		root:     root,
		m4:       m4,
		dir:      dir,
		mailDir:  filepath.Join(dir, "mail"),
		debugLog: filepath.Join(dir, "debug.log"),
	}
	if err := in.prepare(); err != nil {
		t.Fatalf("sendmailtest: %v", err)
	}
	t.Cleanup(func() {
		in.Stop()
		if t.Failed() {
			t.Logf("sendmailtest: Sendmail output:\n%s\ndebug log (%s):\n%s", in.Output(), in.debugLog, tail(readFile(in.debugLog), 80))
		}
	})
	var errs []string
	for attempt := 0; attempt < 3; attempt++ {
		err := in.start()
		if err == nil {
			return in
		}
		errs = append(errs, err.Error())
		in.Stop()
	}
	t.Fatalf("sendmailtest: Sendmail did not start:\n%s\noutput:\n%s\ndebug log:\n%s", strings.Join(errs, "\n"), in.Output(), tail(readFile(in.debugLog), 40))
	return nil
}

const (
	sendmailBin = "usr/libexec/sendmail/sendmail"
	cfDir       = "usr/share/sendmail/cf"
)

func missing(t testing.TB, msg string) {
	t.Helper()
	msg = "INTEROP PEER MISSING: " + msg
	if os.Getenv(interop.EnvRequire) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// prepare writes the files that do not depend on the ports.
func (in *Instance) prepare() error {
	for _, d := range []string{filepath.Join(in.dir, "queue"), in.mailDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	hosts := "127.0.0.1\tlocalhost " + HostName + "\n::1\tlocalhost\n"
	nss, err := nsswitch()
	if err != nil {
		return err
	}
	deliver := "#!/bin/sh\n# The local mailer: one file per message in " + in.mailDir + ".\nset -e\nPATH=/usr/bin:/bin\n" +
		"tmp=" + shellQuote(in.mailDir) + "/.tmp.$$\ncat > \"$tmp\"\n" +
		"mv \"$tmp\" " + shellQuote(in.mailDir) + "/\"$(date +%s%N).$$\"\n"
	files := map[string]struct {
		data string
		mode os.FileMode
	}{
		"hosts":            {hosts, 0o644},
		"nsswitch.conf":    {nss, 0o644},
		"service.switch":   {"hosts files\naliases files\n", 0o644},
		"deliver":          {deliver, 0o755},
		"aliases":          {"", 0o644},
		"helpfile":         {"", 0o644},
		"statistics":       {"", 0o644},
		"local-host-names": {"", 0o644},
	}
	for name, f := range files {
		if err := os.WriteFile(filepath.Join(in.dir, name), []byte(f.data), f.mode); err != nil {
			return err
		}
	}
	return nil
}

// nsswitch returns the system's nsswitch.conf with host lookups from files
// only.
func nsswitch() (string, error) {
	data, err := os.ReadFile("/etc/nsswitch.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var b strings.Builder
	b.WriteString("# sendmailtest: no DNS\nhosts: files\nnetworks: files\n")
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && (f[0] == "hosts:" || f[0] == "networks:") {
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String(), nil
}

// MC returns sendmail.mc for the current ports.
func (in *Instance) MC() string {
	p := func(name string) string { return filepath.Join(in.dir, name) }
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("divert(-1)")
	w("dnl generated by sendmailtest")
	w("divert(0)dnl")
	w("VERSIONID(`sendmailtest')dnl")
	w("OSTYPE(`linux')dnl")
	w("define(`confDOMAIN_NAME', `%s')dnl", HostName)
	w("define(`confDONT_PROBE_INTERFACES', `True')dnl")
	w("define(`confSERVICE_SWITCH_FILE', `%s')dnl", p("service.switch"))
	w("define(`confHOSTS_FILE', `%s')dnl", p("hosts"))
	w("define(`confBIND_OPTS', `-DNSRCH -DEFNAMES')dnl")
	w("define(`QUEUE_DIR', `%s')dnl", p("queue"))
	w("define(`STATUS_FILE', `%s')dnl", p("statistics"))
	w("define(`HELP_FILE', `%s')dnl", p("helpfile"))
	w("define(`ALIAS_FILE', `%s')dnl", p("aliases"))
	w("define(`confCW_FILE', `%s')dnl", p("local-host-names"))
	w("define(`confPID_FILE', `%s')dnl", p("sendmail.pid"))
	w("define(`confDELIVERY_MODE', `interactive')dnl")
	w("define(`confTO_IDENT', `0s')dnl")
	w("define(`confQUEUE_LA', `1000')dnl")
	w("define(`confREFUSE_LA', `1000')dnl")
	w("define(`confLOG_LEVEL', `14')dnl")
	w("define(`confMILTER_LOG_LEVEL', `14')dnl")
	w("FEATURE(`nocanonify')dnl")
	w("FEATURE(`accept_unresolvable_domains')dnl")
	w("FEATURE(`accept_unqualified_senders')dnl")
	w("FEATURE(`no_default_msa')dnl")
	w("DAEMON_OPTIONS(`Family=inet, Addr=127.0.0.1, Port=%d, Name=MTA-v4')dnl", in.port)
	if in.opts.IPv6 {
		w("DAEMON_OPTIONS(`Family=inet6, Addr=::1, Port=%d, Name=MTA-v6')dnl", in.port6)
	}
	w("define(`LOCAL_MAILER_PATH', `%s')dnl", p("deliver"))
	w("define(`LOCAL_MAILER_ARGS', `deliver $u')dnl")
	w("define(`LOCAL_MAILER_FLAGS', `Pmn9S')dnl")
	w("MODIFY_MAILER_FLAGS(`LOCAL', `-wA@')dnl")
	w("LOCAL_DOMAIN(`%s')dnl", in.opts.LocalDomain)
	w("define(`SMART_HOST', `local:localhost')dnl")
	if in.opts.Milter != "" {
		flags := ""
		if in.opts.MilterFlags != "-" {
			flags = ", F=" + in.opts.MilterFlags
		}
		w("INPUT_MAIL_FILTER(`authmilter', `S=%s%s, T=%s')dnl", in.opts.Milter, flags, in.opts.MilterTimeouts)
	}
	for _, l := range in.opts.MC {
		w("%s", l)
	}
	w("MAILER(`local')dnl")
	return b.String()
}

// buildCF writes sendmail.mc and runs m4 to make sendmail.cf.
func (in *Instance) buildCF() error {
	mc, cf := filepath.Join(in.dir, "sendmail.mc"), filepath.Join(in.dir, "sendmail.cf")
	if err := os.WriteFile(mc, []byte(in.MC()), 0o644); err != nil {
		return err
	}
	cfd := filepath.Join(in.root, cfDir)
	cmd := exec.Command(in.m4, "-D_CF_DIR_="+cfd+"/", filepath.Join(cfd, "m4", "cf.m4"), mc)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := runWithTimeout(cmd, 30*time.Second); err != nil {
		return fmt.Errorf("m4: %v: %s", err, errb.String())
	}
	// cf.m4 reports mistakes with errprint, without failing.
	if bytes.Contains(errb.Bytes(), []byte("ERROR")) || bytes.Contains(out.Bytes(), []byte("*** ERROR")) {
		return fmt.Errorf("m4 reports errors in sendmail.mc:\n%s%s", errb.String(), grepLines(out.String(), "ERROR"))
	}
	return os.WriteFile(cf, out.Bytes(), 0o644)
}

func runWithTimeout(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not finish in %s", cmd.Path, d)
	}
}

// wrapper runs in the new mount and UTS namespaces before exec'ing
// Sendmail: our host name, our /etc/hosts, host lookups from files only.
const wrapper = `set -e
hostname "$1"
mount --bind "$2/hosts" /etc/hosts
mount --bind "$2/nsswitch.conf" /etc/nsswitch.conf
shift 2
exec "$@"`

// start picks ports, builds the configuration, runs Sendmail and waits for
// its listeners.
func (in *Instance) start() error {
	var err error
	if in.port, err = freePort("tcp4", "127.0.0.1:0"); err != nil {
		return err
	}
	if in.opts.IPv6 {
		if in.port6, err = freePort("tcp6", "[::1]:0"); err != nil {
			return fmt.Errorf("IPv6 loopback unavailable: %w", err)
		}
	}
	if err := in.buildCF(); err != nil {
		return err
	}
	args := []string{"-c", wrapper, "sh", HostName, in.dir, filepath.Join(in.root, sendmailBin),
		"-bD", "-C", filepath.Join(in.dir, "sendmail.cf")}
	if in.opts.Debug != "" {
		args = append(args, "-D", in.debugLog, "-d"+in.opts.Debug)
	}
	cmd := exec.Command("/bin/sh", args...)
	cmd.Dir = in.dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setsid:       true,
		Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS,
	}
	in.mu.Lock()
	in.output.Reset()
	cmd.Stdout = &lockedWriter{mu: &in.mu, w: &in.output}
	cmd.Stderr = cmd.Stdout
	in.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting sendmail in private namespaces: %w", err)
	}
	done := make(chan struct{})
	in.mu.Lock()
	in.cmd, in.done = cmd, done
	in.mu.Unlock()
	go func() { _ = cmd.Wait(); close(done) }()

	deadline := time.Now().Add(in.opts.StartTimeout)
	for {
		select {
		case <-done:
			return fmt.Errorf("sendmail exited at start: %v", cmd.ProcessState)
		default:
		}
		err := in.listening(cmd.Process.Pid)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sendmail not listening after %s: %v", in.opts.StartTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func freePort(network, addr string) (int, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// listening reports whether process pid has its listeners open. It reads
// /proc instead of connecting, so that the milter sees no probe
// connection.
func (in *Instance) listening(pid int) error {
	want := map[string]int{"/proc/net/tcp": in.port}
	if in.opts.IPv6 {
		want["/proc/net/tcp6"] = in.port6
	}
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return err
	}
	mine := map[string]bool{}
	for _, fd := range fds {
		if link, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil {
			mine[link] = true
		}
	}
	for file, port := range want {
		inodes, err := listeningInodes(file, port)
		if err != nil {
			return err
		}
		found := false
		for _, ino := range inodes {
			found = found || mine["socket:["+ino+"]"]
		}
		if !found {
			return fmt.Errorf("sendmail (pid %d) does not listen on port %d (%s) yet", pid, port, file)
		}
	}
	return nil
}

// listeningInodes returns the inodes of the sockets in LISTEN state on
// port (any address) in a /proc/net/tcp{,6} file.
func listeningInodes(file string, port int) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	suffix := fmt.Sprintf(":%04X", port)
	var inodes []string
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 10 && strings.HasSuffix(f[1], suffix) && f[3] == "0A" {
			inodes = append(inodes, f[9])
		}
	}
	return inodes, nil
}

// Stop kills Sendmail and its children. Safe to call more than once.
func (in *Instance) Stop() {
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	in.cmd = nil
	in.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	pgid := cmd.Process.Pid // Setsid: Sendmail leads its session's group
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	// Children (an SMTP session, a delivery) may outlive the daemon.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// Addr is the IPv4 SMTP listener, "127.0.0.1:PORT".
func (in *Instance) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(in.port)) }

// Addr6 is the IPv6 SMTP listener, "[::1]:PORT", or "" without Options.IPv6.
func (in *Instance) Addr6() string {
	if !in.opts.IPv6 {
		return ""
	}
	return net.JoinHostPort("::1", strconv.Itoa(in.port6))
}

// Dir is the instance's directory (sendmail.mc, sendmail.cf, queue/, mail/).
func (in *Instance) Dir() string { return in.dir }

// Output is what Sendmail wrote to stdout and stderr so far.
func (in *Instance) Output() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.output.String()
}

// DebugLog is the -d output so far (Options.Debug).
func (in *Instance) DebugLog() string { return readFile(in.debugLog) }

// Delivered is one message written by the local mailer, with LF line ends:
// Sendmail's Return-Path and Received on top, then the message as the
// milter left it.
type Delivered struct {
	Path   string
	Raw    []byte
	Header []postfixtest.HeaderField
	Body   []byte
}

// Get returns the value of the first field named name, or "".
func (d Delivered) Get(name string) string {
	if vs := d.Values(name); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// Values returns the values of every field named name, in order.
func (d Delivered) Values(name string) []string {
	var vs []string
	for _, f := range d.Header {
		if strings.EqualFold(f.Name, name) {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

// Deliveries returns the messages delivered so far, oldest first.
func (in *Instance) Deliveries(t testing.TB) []Delivered {
	t.Helper()
	ents, err := os.ReadDir(in.mailDir)
	if err != nil {
		t.Fatalf("sendmailtest: %v", err)
	}
	var names []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // nanosecond timestamps of equal length
	var ds []Delivered
	for _, n := range names {
		p := filepath.Join(in.mailDir, n)
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("sendmailtest: %v", err)
		}
		h, body := postfixtest.ParseMessage(raw)
		ds = append(ds, Delivered{Path: p, Raw: raw, Header: h, Body: body})
	}
	return ds
}

// WaitDelivered waits until at least n messages were delivered and returns
// them; it fails the test after timeout.
func (in *Instance) WaitDelivered(t testing.TB, n int, timeout time.Duration) []Delivered {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ds := in.Deliveries(t)
		if len(ds) >= n {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("sendmailtest: %d of %d messages delivered after %s", len(ds), n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(data)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func grepLines(s, sub string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
