package postfixtest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authmilter/authmilter/internal/testsupport/interop"
)

// Options configures a private Postfix instance. The zero value is usable:
// no milter, example.test as the local domain.
type Options struct {
	// Milter is the smtpd_milters value, e.g. "inet:127.0.0.1:12345".
	// Empty means no milter.
	Milter string

	// MilterDefaultAction is milter_default_action: "tempfail" (default),
	// "accept", "reject" or "quarantine".
	MilterDefaultAction string

	// Milter timeouts (milter_connect_timeout, milter_command_timeout,
	// milter_content_timeout). Zero means 5s, 10s and 30s. Postfix counts in
	// whole seconds; anything below one second becomes 1s.
	MilterConnectTimeout time.Duration
	MilterCommandTimeout time.Duration
	MilterContentTimeout time.Duration

	// LocalDomain is the domain Postfix accepts mail for from any client
	// (virtual_mailbox_domains). Default "example.test". Mail for other
	// domains is relayed only for mynetworks (127.0.0.0/8), but every
	// accepted message, whatever its domain, ends up in the one Maildir.
	LocalDomain string

	// Extra holds raw main.cf settings applied last, overriding the
	// harness's own (e.g. "milter_mail_macros", "mynetworks").
	Extra map[string]string

	// StartTimeout bounds how long Start waits for master to listen.
	// Default 30s.
	StartTimeout time.Duration

	// SMTPTimeout bounds each command/reply exchange of Send and
	// SendSession; keep it above the milter timeouts when testing slow
	// milters. Default 60s.
	SMTPTimeout time.Duration
}

// Instance is a running private Postfix instance.
type Instance struct {
	opts Options

	dir      string // root of everything (a t.TempDir)
	confDir  string // config_directory: main.cf, master.cf
	spoolDir string // queue_directory
	dataDir  string // data_directory
	mailDir  string // the Maildir every message is delivered to
	logPath  string // maillog_file

	postfixBin string
	masterBin  string
	uid, gid   int
	port       int

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}     // closed when the master process has exited
	extra map[string]string // settings changed by Reconfigure
}

const (
	defaultLocalDomain = "example.test"
	myHostname         = "mx.postfixtest.test"
)

// Start launches a private Postfix instance under t.TempDir() and returns
// once master(8) listens on the SMTP port (checked through /proc, without
// connecting, so that the milter sees no probe connection). The instance is stopped
// (all its processes killed) by t.Cleanup. Start skips the test when Postfix
// is not installed (fails when AUTHMILTER_REQUIRE_INTEROP=1) and fails it,
// with the end of Postfix's log, when Postfix rejects the configuration or
// does not come up.
func Start(t testing.TB, opts Options) *Instance {
	t.Helper()
	postfixBin := interop.Need(t, "postfix", "postfix")
	postconfBin := interop.Need(t, "postconf", "postfix")
	if os.Geteuid() != 0 {
		msg := "INTEROP PEER MISSING: postfixtest runs a private Postfix master, which needs root"
		if os.Getenv(interop.EnvRequire) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if opts.LocalDomain == "" {
		opts.LocalDomain = defaultLocalDomain
	}
	switch opts.MilterDefaultAction {
	case "":
		opts.MilterDefaultAction = "tempfail"
	case "accept", "reject", "tempfail", "quarantine":
	default:
		// smtpd would only complain at the first connection.
		t.Fatalf("postfixtest: MilterDefaultAction %q is not accept, reject, tempfail or quarantine", opts.MilterDefaultAction)
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.SMTPTimeout == 0 {
		opts.SMTPTimeout = 60 * time.Second
	}

	out, err := exec.Command(postconfBin, "-dh", "daemon_directory", "mail_version").Output()
	if err != nil {
		t.Fatalf("postfixtest: postconf -dh daemon_directory mail_version: %v", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != 2 {
		t.Fatalf("postfixtest: postconf -dh daemon_directory mail_version: %q", out)
	}
	var major, minor int
	if _, err := fmt.Sscanf(lines[1], "%d.%d", &major, &minor); err != nil || major < 3 || (major == 3 && minor < 4) {
		// maillog_file and postlogd appeared in 3.4.
		t.Fatalf("postfixtest: Postfix %s is too old, need 3.4 or later", lines[1])
	}
	masterBin := filepath.Join(lines[0], "master")
	if _, err := os.Stat(masterBin); err != nil {
		t.Fatalf("postfixtest: Postfix master program: %v", err)
	}

	uid, gid := deliveryIDs()
	dir := t.TempDir()
	in := &Instance{
		opts:       opts,
		dir:        dir,
		confDir:    filepath.Join(dir, "etc"),
		spoolDir:   filepath.Join(dir, "spool"),
		dataDir:    filepath.Join(dir, "data"),
		mailDir:    filepath.Join(dir, "mail", "mailbox"),
		logPath:    filepath.Join(dir, "maillog"),
		postfixBin: postfixBin,
		masterBin:  masterBin,
		uid:        uid,
		gid:        gid,
		extra:      map[string]string{},
	}
	if err := in.prepareDirs(); err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	t.Cleanup(func() {
		in.Stop()
		if t.Failed() {
			t.Logf("postfixtest: end of Postfix log (%s):\n%s", in.logPath, in.LogTail(60))
		}
	})
	in.startWithRetry(t)
	return in
}

// deliveryIDs picks the unprivileged user the virtual(8) agent delivers as.
func deliveryIDs() (uid, gid int) {
	for _, name := range []string{"nobody", "postfix"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		if uid >= 100 { // virtual_minimum_uid
			return uid, gid
		}
	}
	return 65534, 65534
}

func (in *Instance) prepareDirs() error {
	for _, d := range []string{in.confDir, in.spoolDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// The delivery agent runs as an unprivileged user and opens the Maildir
	// by absolute path: every directory above it must be searchable.
	// t.TempDir() makes 0700 directories, so open the ones we own.
	if err := makeSearchable(in.dir); err != nil {
		return err
	}
	base := filepath.Dir(in.mailDir)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return err
	}
	for _, d := range []string{in.mailDir, filepath.Join(in.mailDir, "tmp"), filepath.Join(in.mailDir, "new"), filepath.Join(in.mailDir, "cur")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := os.Chown(d, in.uid, in.gid); err != nil {
			return err
		}
	}
	return nil
}

// makeSearchable adds o+x to dir and to its ancestors below the system
// temporary directory (the per-test directories made by t.TempDir).
func makeSearchable(dir string) error {
	stop := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); d != stop && d != "/" && d != "."; d = filepath.Dir(d) {
		if !strings.HasPrefix(d, stop+string(filepath.Separator)) {
			break
		}
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				return err
			}
		}
	}
	return nil
}

// settings returns main.cf for the current options and port.
func (in *Instance) settings() map[string]string {
	o := in.opts
	s := map[string]string{
		"compatibility_level": "3.6",
		"queue_directory":     in.spoolDir,
		"data_directory":      in.dataDir,
		"mail_owner":          "postfix",
		"setgid_group":        "postdrop",
		"myhostname":          myHostname,
		"mydomain":            "postfixtest.test",
		"myorigin":            "$myhostname",
		"mydestination":       "",
		"mynetworks":          "127.0.0.0/8",
		"inet_interfaces":     "127.0.0.1",
		"inet_protocols":      "all", // IPv6 client addresses via XCLIENT; still bound to 127.0.0.1 only
		"smtpd_banner":        "$myhostname ESMTP postfixtest",
		"biff":                "no",
		"append_dot_mydomain": "no",
		"readme_directory":    "no",

		// Logging to a file we can show on failure (postlogd, Postfix ≥ 3.4).
		"maillog_file":          in.logPath,
		"maillog_file_prefixes": in.dir,

		// No DNS, no outside world.
		"smtp_dns_support_level": "disabled",
		"smtp_host_lookup":       "native",
		"lmtp_host_lookup":       "native",
		"smtpd_peername_lookup":  "no",
		"relayhost":              "",
		"alias_maps":             "",
		"alias_database":         "",
		"local_recipient_maps":   "",

		// Everything is delivered to one Maildir by virtual(8): the local
		// domain by address class, any other domain through
		// default_transport, so nothing ever leaves the machine.
		"virtual_mailbox_domains": o.LocalDomain,
		"virtual_mailbox_base":    filepath.Dir(in.mailDir),
		"virtual_mailbox_maps":    "static:" + filepath.Base(in.mailDir) + "/",
		"virtual_uid_maps":        "static:" + strconv.Itoa(in.uid),
		"virtual_gid_maps":        "static:" + strconv.Itoa(in.gid),
		"default_transport":       "virtual",
		"relay_transport":         "virtual",
		"relay_domains":           "",

		// Let tests choose the client address/HELO the milter sees.
		"smtpd_authorized_xclient_hosts": "127.0.0.0/8",
		"smtpd_client_restrictions":      "",
		"smtpd_helo_restrictions":        "",
		"smtpd_sender_restrictions":      "",
		"smtpd_recipient_restrictions":   "",
		"smtpd_relay_restrictions":       "permit_mynetworks, reject_unauth_destination",
		"smtpd_error_sleep_time":         "0",
		"smtpd_soft_error_limit":         "100",
		"smtpd_hard_error_limit":         "200",
		"smtpd_junk_command_limit":       "1000",

		// Milter.
		"smtpd_milters":          o.Milter,
		"non_smtpd_milters":      "",
		"milter_default_action":  o.MilterDefaultAction,
		"milter_protocol":        "6",
		"milter_connect_timeout": postfixSeconds(o.MilterConnectTimeout, 5*time.Second),
		"milter_command_timeout": postfixSeconds(o.MilterCommandTimeout, 10*time.Second),
		"milter_content_timeout": postfixSeconds(o.MilterContentTimeout, 30*time.Second),

		// Fast queue: deferred mail is retried within seconds.
		"queue_run_delay":        "1s",
		"minimal_backoff_time":   "1s",
		"maximal_backoff_time":   "2s",
		"maximal_queue_lifetime": "10m",
		"bounce_queue_lifetime":  "10m",
		"delay_warning_time":     "0h",
		"in_flow_delay":          "0",
	}
	for k, v := range o.Extra {
		s[k] = v
	}
	for k, v := range in.extra {
		s[k] = v
	}
	return s
}

func postfixSeconds(d, def time.Duration) string {
	if d == 0 {
		d = def
	}
	secs := int64((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return strconv.FormatInt(secs, 10) + "s"
}

func (in *Instance) writeConfig() error {
	s := in.settings()
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("# generated by postfixtest\n")
	for _, k := range keys {
		v := strings.ReplaceAll(s[k], "\n", " ")
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	mainCF, masterCFPath := filepath.Join(in.confDir, "main.cf"), filepath.Join(in.confDir, "master.cf")
	if err := os.WriteFile(mainCF, b.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(masterCFPath, []byte(masterCF(in.port)), 0o644); err != nil {
		return err
	}
	// Postfix programs wait (300 ms at a time, up to ~2 s) for a main.cf
	// modified within the last second or two to "settle". Backdate both
	// files so that check and start do not pay that wait.
	old := time.Now().Add(-time.Minute)
	for _, f := range []string{mainCF, masterCFPath} {
		if err := os.Chtimes(f, old, old); err != nil {
			return err
		}
	}
	return nil
}

// masterCF is Debian's master.cf with chroot disabled everywhere (the
// private queue has no chroot jail) and the SMTP listener on our port.
func masterCF(port int) string {
	return fmt.Sprintf(`# generated by postfixtest; chroot is off for every service
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:%d inet n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`, port)
}

// pickPort is freePort; tests replace it to exercise the retry.
var pickPort = freePort

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

var errPortInUse = errors.New("port in use")

func (in *Instance) startWithRetry(t testing.TB) {
	t.Helper()
	checked := false
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := pickPort()
		if err != nil {
			t.Fatalf("postfixtest: picking a port: %v", err)
		}
		in.port = port
		if err := in.writeConfig(); err != nil {
			t.Fatalf("postfixtest: writing configuration: %v", err)
		}
		if !checked {
			in.check(t)
			checked = true
		}
		err = in.startMaster()
		if err == nil {
			return
		}
		last = err
		if !errors.Is(err, errPortInUse) {
			break
		}
	}
	t.Fatalf("postfixtest: Postfix did not start: %v\n--- master output ---\n%s\n--- end of maillog ---\n%s",
		last, in.masterOutput(), in.LogTail(40))
}

// check runs "postfix -c DIR check", which creates the queue directories
// with the owners and modes Postfix expects and rejects broken setups.
func (in *Instance) check(t testing.TB) {
	t.Helper()
	cmd := exec.Command(in.postfixBin, "-c", in.confDir, "check")
	cmd.Env = in.env()
	tty := attachTTY(cmd)
	err := cmd.Start()
	tty.started()
	if err == nil {
		err = cmd.Wait()
	}
	out := tty.wait(2 * time.Second)
	if err != nil {
		t.Fatalf("postfixtest: Postfix refused the configuration (postfix -c %s check): %v\n%s\n--- main.cf ---\n%s\n--- end of maillog ---\n%s",
			in.confDir, err, out, readFile(filepath.Join(in.confDir, "main.cf")), in.LogTail(40))
	}
	// postconf reports unknown or malformed parameter names on stderr.
	pc := exec.Command(filepath.Join(filepath.Dir(in.postfixBin), "postconf"), "-c", in.confDir, "-n")
	pc.Env = in.env()
	var stderr bytes.Buffer
	pc.Stderr = &stderr
	if err := pc.Run(); err != nil || strings.Contains(stderr.String(), "warning") {
		t.Logf("postfixtest: postconf -c %s -n: %v\n%s", in.confDir, err, stderr.String())
	}
}

func (in *Instance) env() []string {
	env := make([]string, 0, len(os.Environ())+1)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "MAIL_CONFIG=") {
			env = append(env, e)
		}
	}
	return append(env, "MAIL_CONFIG="+in.confDir)
}

// startMaster runs master(8) in the foreground as our child, in its own
// session (so that it and every daemon it spawns share one process group we
// can kill), and waits until it listens on the SMTP port.
func (in *Instance) startMaster() error {
	// -d: stay in the foreground and keep stdout/stderr. master's own
	// start-up errors (e.g. "bind ...: Address already in use") go to
	// syslog only, which a container usually lacks: postlogd is not up yet.
	cmd := exec.Command(in.masterBin, "-c", in.confDir, "-d")
	cmd.Env = in.env()
	cmd.Dir = in.spoolDir
	// A file, not a pipe: every daemon inherits these descriptors, and
	// exec.Cmd.Wait would wait for the last of them to close a pipe.
	out, err := os.OpenFile(filepath.Join(in.dir, "master.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = masterProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", in.masterBin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	in.mu.Lock()
	in.cmd, in.done = cmd, done
	in.mu.Unlock()

	deadline := time.Now().Add(in.opts.StartTimeout)
	addr := in.Addr()
	for {
		select {
		case <-done:
			in.killGroup(cmd.Process.Pid)
			in.mu.Lock()
			in.cmd = nil // never signal that process group again
			in.mu.Unlock()
			if portTaken(addr) || strings.Contains(in.masterOutput()+in.Logs(), "Address already in use") {
				return fmt.Errorf("%w: %s", errPortInUse, addr)
			}
			return fmt.Errorf("master exited during start-up (%s); its fatal errors went to syslog, "+
				"to see them run: strace -f -e trace=connect,bind,openat -s 200 %s -c %s -d", cmd.ProcessState, in.masterBin, in.confDir)
		default:
		}
		if err := in.probeListener(cmd.Process.Pid); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			in.kill()
			return fmt.Errorf("no SMTP banner on %s after %s: %v", addr, in.opts.StartTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// portTaken reports whether another process listens on addr.
func portTaken(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return errors.Is(err, syscall.EADDRINUSE)
	}
	ln.Close()
	return false
}

func (in *Instance) masterOutput() string {
	return readFile(filepath.Join(in.dir, "master.out"))
}

// probeListener reports whether master (pid) listens on our port. It reads
// /proc rather than connecting, so that the milter under test sees no
// extra SMTP connection; where /proc is unavailable it falls back to reading
// the SMTP banner.
func (in *Instance) probeListener(pid int) error {
	inodes, err := listeningInodes(in.port)
	if err != nil {
		return probeBanner(in.Addr())
	}
	if len(inodes) == 0 {
		return fmt.Errorf("nothing listens on %s yet", in.Addr())
	}
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return err
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err != nil {
			continue
		}
		if inodes[link] {
			return nil
		}
	}
	return fmt.Errorf("%s is in use by another process", in.Addr())
}

// listeningInodes returns "socket:[inode]" for the TCP sockets listening on
// 127.0.0.1:port, from /proc/net/tcp.
func listeningInodes(port int) (map[string]bool, error) {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	// The address is the in-memory u32 in hex: byte order depends on the CPU.
	le, be := fmt.Sprintf("0100007F:%04X", port), fmt.Sprintf("7F000001:%04X", port)
	inodes := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		if len(f) < 10 || (f[1] != le && f[1] != be) || f[3] != "0A" {
			continue
		}
		inodes["socket:["+f[9]+"]"] = true
	}
	return inodes, nil
}

func probeBanner(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(buf[:n], []byte("220")) {
		return fmt.Errorf("unexpected banner %q", buf[:n])
	}
	_, _ = c.Write([]byte("QUIT\r\n"))
	return nil
}

// Stop terminates the instance and every process it started. It is safe to
// call more than once; Start registers it with t.Cleanup.
func (in *Instance) Stop() {
	in.kill()
}

func (in *Instance) kill() {
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	in.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	pgid := cmd.Process.Pid // Setsid: master leads its own process group
	// SIGTERM: master terminates its children (kill(-pgid)) and exits.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	in.killGroup(pgid)
	in.mu.Lock()
	if in.cmd == cmd {
		in.cmd = nil // never signal that process group again
	}
	in.mu.Unlock()
}

// killGroup kills what is left of master's process group.
func (in *Instance) killGroup(pgid int) {
	// Children that outlive the master (postlogd, a delivery in progress)
	// still carry its process group. Some take over a second to notice the
	// SIGTERM; nothing of this instance is worth waiting for.
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// Reconfigure changes main.cf settings (on top of Options.Extra) and
// restarts the instance on the same port and queue, so that the change
// applies to every later connection. Queued mail, the Maildir and the log
// are kept.
func (in *Instance) Reconfigure(t testing.TB, settings map[string]string) {
	t.Helper()
	for k, v := range settings {
		in.extra[k] = v
	}
	in.kill()
	if err := in.writeConfig(); err != nil {
		t.Fatalf("postfixtest: writing configuration: %v", err)
	}
	in.check(t)
	if err := in.startMaster(); err != nil {
		t.Fatalf("postfixtest: Postfix did not restart: %v\n--- master output ---\n%s\n--- end of maillog ---\n%s",
			err, in.masterOutput(), in.LogTail(40))
	}
}

// Addr is the host:port of the SMTP listener.
func (in *Instance) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(in.port))
}

// Dir is the instance's root directory; ConfigDir holds main.cf and
// master.cf; QueueDir is queue_directory; MailDir is the Maildir that
// receives every delivered message.
func (in *Instance) Dir() string       { return in.dir }
func (in *Instance) ConfigDir() string { return in.confDir }
func (in *Instance) QueueDir() string  { return in.spoolDir }
func (in *Instance) MailDir() string   { return in.mailDir }

// Logs returns Postfix's whole log so far ("" if there is none yet).
func (in *Instance) Logs() string {
	return readFile(in.logPath)
}

// LogTail returns the last n lines of Postfix's log.
func (in *Instance) LogTail(n int) string {
	lines := strings.SplitAfter(in.Logs(), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

// command runs a Postfix tool (postqueue, postsuper, postcat) against this
// instance and returns its standard output.
func (in *Instance) command(name string, args ...string) ([]byte, error) {
	bin := filepath.Join(filepath.Dir(in.postfixBin), name)
	if _, err := os.Stat(bin); err != nil {
		p, lerr := exec.LookPath(name)
		if lerr != nil {
			return nil, err
		}
		bin = p
	}
	cmd := exec.Command(bin, append([]string{"-c", in.confDir}, args...)...)
	cmd.Env = in.env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// problems returns the log lines in which a Postfix program reports a
// fatal error or panic (a daemon died: smtpd closes the connection).
func (in *Instance) problems() string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(in.Logs(), "\n") {
		if strings.Contains(l, " fatal: ") || strings.Contains(l, " panic: ") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// fatalf fails the test with the end of the maillog attached.
func (in *Instance) fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatalf("postfixtest: "+format+"\n--- end of Postfix log ---\n%s", append(args, in.LogTail(40))...)
}
