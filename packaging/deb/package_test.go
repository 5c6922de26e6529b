// Package deb_test builds the Debian package with packaging/deb/build, runs
// lintian on it, and, on a CI machine (root, AUTHMILTER_PACKAGE_TEST=1),
// installs it, runs the unit's ExecStart line as the authmilter user, sends
// mail through it, and removes and purges it.
package deb_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/authmilter/authmilter/internal/testsupport/interop"
	"github.com/authmilter/authmilter/internal/testsupport/syncbuf"
)

// EnvPackageTest, set to 1 (by .ci/run), allows the test to install the
// package on this machine with dpkg -i, run it, and purge it.
const EnvPackageTest = "AUTHMILTER_PACKAGE_TEST"

const (
	repoRoot = "../.."
	socket   = "/run/authmilter/authmilter.sock"
	confPath = "/etc/authmilter/authmilter.yaml"
	unitPath = "/lib/systemd/system/authmilter.service"
	zonePath = "/etc/authmilter/package-test.zone"
)

// command runs name with args under ctx and returns its combined output,
// failing the test when it fails.
func command(t *testing.T, ctx context.Context, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// buildPackage runs packaging/deb/build into a temporary directory and
// returns the package's path.
func buildPackage(t *testing.T, ctx context.Context) string {
	t.Helper()
	interop.Need(t, "go-md2man", "go-md2man")
	interop.Need(t, "dpkg-deb", "dpkg")
	out := t.TempDir()
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot, "packaging", "deb", "build"), out)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("packaging/deb/build: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	deb := strings.TrimSpace(stdout.String())
	version := strings.TrimSpace(command(t, ctx, "dpkg-deb", "-f", deb, "Version"))
	arch := strings.TrimSpace(command(t, ctx, "dpkg-deb", "-f", deb, "Architecture"))
	if want := filepath.Join(out, "authmilter_"+version+"_"+arch+".deb"); deb != want {
		t.Fatalf("build printed %q, want %q", deb, want)
	}
	return deb
}

func TestPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Debian package")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	deb := buildPackage(t, ctx)

	t.Run("contents", func(t *testing.T) { checkContents(t, ctx, deb) })
	t.Run("lintian", func(t *testing.T) { checkLintian(t, ctx, deb) })
	t.Run("install", func(t *testing.T) {
		switch {
		case os.Geteuid() != 0:
			t.Skip("PACKAGE INSTALL TEST SKIPPED: not root (it installs and purges the package with dpkg; .ci/run runs it as root with " + EnvPackageTest + "=1)")
		case os.Getenv(EnvPackageTest) != "1":
			msg := "PACKAGE INSTALL TEST SKIPPED: " + EnvPackageTest + " is not 1; set it to let the test install, run and purge the package on this machine"
			if os.Getenv(interop.EnvRequire) == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		installAndRun(t, ctx, deb)
	})
}

// checkContents: the files, their modes and owners, and the control data.
func checkContents(t *testing.T, ctx context.Context, deb string) {
	listing := command(t, ctx, "dpkg-deb", "--contents", deb)
	want := map[string]string{ // path → mode and owner
		"./usr/sbin/authmilter":                      "-rwxr-xr-x root/root",
		"./etc/authmilter/authmilter.yaml":           "-rw-r--r-- root/root",
		"./lib/systemd/system/authmilter.service":    "-rw-r--r-- root/root",
		"./usr/share/man/man8/authmilter.8.gz":       "-rw-r--r-- root/root",
		"./usr/share/man/man5/authmilter.yaml.5.gz":  "-rw-r--r-- root/root",
		"./usr/share/doc/authmilter/copyright":       "-rw-r--r-- root/root",
		"./usr/share/doc/authmilter/changelog.gz":    "-rw-r--r-- root/root",
		"./usr/share/doc/authmilter/operating.md.gz": "-rw-r--r-- root/root",
		"./usr/share/doc/authmilter/signing.md.gz":   "-rw-r--r-- root/root",
		"./usr/share/doc/authmilter/audit.md.gz":     "-rw-r--r-- root/root",
		"./usr/share/doc/authmilter/migrating.md.gz": "-rw-r--r-- root/root",
		"./etc/authmilter/":                          "drwxr-xr-x root/root",
		"./usr/share/doc/authmilter/":                "drwxr-xr-x root/root",
		"./lib/systemd/system/":                      "drwxr-xr-x root/root",
		"./usr/share/man/man8/":                      "drwxr-xr-x root/root",
		"./usr/share/man/man5/":                      "drwxr-xr-x root/root",
		"./usr/sbin/":                                "drwxr-xr-x root/root",
		"./etc/":                                     "drwxr-xr-x root/root",
		"./usr/share/doc/":                           "drwxr-xr-x root/root",
		"./usr/share/man/":                           "drwxr-xr-x root/root",
		"./usr/share/":                               "drwxr-xr-x root/root",
		"./usr/":                                     "drwxr-xr-x root/root",
		"./lib/systemd/":                             "drwxr-xr-x root/root",
		"./lib/":                                     "drwxr-xr-x root/root",
		"./":                                         "drwxr-xr-x root/root",
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents line %q", line)
		}
		path, mode := f[len(f)-1], f[0]+" "+f[1]
		seen[path] = true
		if w, ok := want[path]; !ok {
			t.Errorf("unexpected file in the package: %s", line)
		} else if mode != w {
			t.Errorf("%s: %s, want %s", path, mode, w)
		}
	}
	for path := range want {
		if !seen[path] {
			t.Errorf("the package lacks %s", path)
		}
	}
	if got := command(t, ctx, "dpkg-deb", "--info", deb, "conffiles"); got != "/etc/authmilter/authmilter.yaml\n" {
		t.Errorf("conffiles: %q", got)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		if _, err := exec.CommandContext(ctx, "dpkg-deb", "--info", deb, script).Output(); err != nil {
			t.Errorf("no %s: %v", script, err)
		}
	}
	if deps := command(t, ctx, "dpkg-deb", "-f", deb, "Depends"); !strings.Contains(deps, "adduser") {
		t.Errorf("Depends %q lacks adduser (postinst runs it)", deps)
	}
}

// checkLintian: no errors, and every warning or info tag is one that
// packaging/deb/README.md accepts with a reason.
func checkLintian(t *testing.T, ctx context.Context, deb string) {
	lintian := interop.Need(t, "lintian", "lintian")
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	// Exit status 1 is "tags of --fail-on's level found": the tags are
	// judged below.
	out, err := exec.CommandContext(ctx, lintian, "--pedantic", "-I", "-E", "--tag-display-limit", "0", deb).CombinedOutput()
	if exit := (*exec.ExitError)(nil); err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("lintian: %v\n%s", err, out)
	}
	tag := regexp.MustCompile(`^([EWIPX]): authmilter[^:]*: (\S+)`)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := tag.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		switch {
		case m[1] == "E":
			t.Errorf("lintian error: %s", sc.Text())
		case !bytes.Contains(readme, []byte("`"+m[2])):
			t.Errorf("lintian %s not accepted in packaging/deb/README.md (fix it, or add it to the lintian table there with the reason): %s", m[1], sc.Text())
		}
	}
	t.Logf("lintian --pedantic -I -E:\n%s", out)
}

// installAndRun installs the package, checks what it installed, runs the
// daemon as the unit would, sends two messages through it, then removes
// and purges the package and checks what is left.
func installAndRun(t *testing.T, ctx context.Context, deb string) {
	if exec.CommandContext(ctx, "dpkg-query", "-W", "authmilter").Run() == nil {
		t.Fatal("a package named authmilter is installed or known to dpkg here; the test would replace and purge it: remove it first")
	}
	if _, err := os.Stat("/etc/authmilter"); err == nil {
		t.Fatal("/etc/authmilter exists without the package; the test would change it: move it away first")
	}
	t.Cleanup(func() {
		// Whatever happened, leave no package, configuration or state.
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		exec.CommandContext(c, "dpkg", "--purge", "authmilter").Run()
		os.Remove(zonePath)
		os.Remove("/etc/authmilter")
	})
	version := strings.TrimSpace(command(t, ctx, "dpkg-deb", "-f", deb, "Version"))
	command(t, ctx, "dpkg", "-i", deb)

	// The system user and group.
	u, err := user.Lookup("authmilter")
	if err != nil {
		t.Fatalf("user authmilter: %v", err)
	}
	if u.HomeDir != "/var/lib/authmilter" {
		t.Errorf("authmilter's home %s, want /var/lib/authmilter", u.HomeDir)
	}
	if pw := command(t, ctx, "getent", "passwd", "authmilter"); !strings.HasSuffix(strings.TrimSpace(pw), ":/usr/sbin/nologin") {
		t.Errorf("authmilter has a login shell: %s", pw)
	}
	if uid := atoi(u.Uid); uid == 0 || uid >= 1000 {
		t.Errorf("authmilter uid %d, want a system uid", uid)
	}
	g, err := user.LookupGroup("authmilter")
	if err != nil || g.Gid != u.Gid {
		t.Fatalf("group authmilter %+v (%v); the user's group is %s", g, err, u.Gid)
	}

	// Files and permissions.
	for path, want := range map[string]os.FileMode{
		"/usr/sbin/authmilter":                0o755,
		confPath:                              0o644,
		unitPath:                              0o644,
		"/usr/share/man/man8/authmilter.8.gz": 0o644,
		"/usr/share/man/man5/authmilter.yaml.5.gz": 0o644,
		"/usr/share/doc/authmilter/copyright":      0o644,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode().Perm() != want || sys.Uid != 0 || sys.Gid != 0 {
			t.Errorf("%s: mode %v owner %d:%d, want %v root:root", path, st.Mode().Perm(), sys.Uid, sys.Gid, want)
		}
	}
	for installed, source := range map[string]string{confPath: "configs/authmilter.yaml", unitPath: "configs/authmilter.service"} {
		a, _ := os.ReadFile(installed)
		b, _ := os.ReadFile(filepath.Join(repoRoot, source))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s", installed, source)
		}
	}
	if got := command(t, ctx, "dpkg-query", "-W", "-f=${Conffiles}", "authmilter"); !strings.Contains(got, confPath) {
		t.Errorf("conffiles registered: %q", got)
	}
	// Enabled (not started: systemd does not run here, and postinst
	// starts nothing on a first install).
	const wants = "/etc/systemd/system/multi-user.target.wants/authmilter.service"
	if target, err := os.Readlink(wants); err != nil || target != unitPath {
		t.Errorf("unit not enabled: %s → %q (%v)", wants, target, err)
	}
	// The unit as systemd reads it (no running systemd needed): directives
	// it knows, an executable ExecStart, man pages for Documentation=.
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		out, err := exec.CommandContext(ctx, analyze, "verify", unitPath).CombinedOutput()
		if err != nil || strings.Contains(string(out), "authmilter.service") {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
		}
	} else {
		t.Log("no systemd-analyze here: the unit is not verified")
	}
	if out := command(t, ctx, "/usr/sbin/authmilter", "version"); !strings.HasPrefix(out, "authmilter "+version+" (") {
		t.Errorf("authmilter version: %q, want the package version %s", out, version)
	}

	// The administrator's changes: a Unix socket in the runtime directory
	// (then dpkg-reconfigure lets postfix in), an authserv-id, and a zone
	// file so that the test needs no DNS.
	zone := `$ORIGIN example.com.
$TTL 300
@       SOA  ns hostmaster 1 3600 600 86400 300
@       TXT  "v=spf1 ip4:192.0.2.0/24 -all"
mail    A    192.0.2.10
_dmarc  TXT  "v=DMARC1; p=reject"
`
	if err := os.WriteFile(zonePath, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	edited := string(conf)
	for _, r := range [][2]string{
		{"\nlisten: inet:127.0.0.1:8895\n", "\nlisten: unix:" + socket + "\n"},
		{"\n# authserv_id: mx.example.net\n", "\nauthserv_id: mx.package-test.example\n"},
		{`  zone_file: ""`, "  zone_file: " + zonePath},
	} {
		if !strings.Contains(edited, r[0]) {
			t.Fatalf("%s lacks %q", confPath, r[0])
		}
		edited = strings.Replace(edited, r[0], r[1], 1)
	}
	if err := os.WriteFile(confPath, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	command(t, ctx, "dpkg-reconfigure", "authmilter")
	if _, err := user.Lookup("postfix"); err == nil {
		if groups := command(t, ctx, "id", "-nG", "postfix"); !strings.Contains(" "+strings.TrimSpace(groups)+" ", " authmilter ") {
			t.Errorf("postfix is not in the group authmilter after dpkg-reconfigure with a socket in /run/authmilter: %s", groups)
		}
	} else {
		t.Log("no postfix user here: the group membership is not checked")
	}

	runDaemon(t, ctx, u)

	// Remove: the binary goes; configuration and state stay; the unit is
	// masked as debhelper's scripts do.
	command(t, ctx, "dpkg", "--remove", "authmilter")
	for _, gone := range []string{"/usr/sbin/authmilter", unitPath, "/usr/share/man/man8/authmilter.8.gz"} {
		if _, err := os.Lstat(gone); err == nil {
			t.Errorf("%s left after dpkg --remove", gone)
		}
	}
	for _, kept := range []string{confPath, zonePath, "/var/lib/authmilter"} {
		if _, err := os.Stat(kept); err != nil {
			t.Errorf("dpkg --remove deleted %s: %v", kept, err)
		}
	}
	if target, _ := os.Readlink("/etc/systemd/system/authmilter.service"); target != "/dev/null" {
		t.Errorf("unit not masked after remove: %q", target)
	}

	// Purge: configuration and state go; a file the administrator added
	// keeps /etc/authmilter, with a message.
	out := command(t, ctx, "dpkg", "--purge", "authmilter")
	if !strings.Contains(out, "/etc/authmilter not removed") {
		t.Errorf("purge did not say why /etc/authmilter stays:\n%s", out)
	}
	for _, gone := range []string{confPath, "/var/lib/authmilter", "/run/authmilter", wants, "/etc/systemd/system/authmilter.service"} {
		if _, err := os.Lstat(gone); err == nil {
			t.Errorf("%s left after dpkg --purge", gone)
		}
	}
	if entries, _ := os.ReadDir("/etc/authmilter"); len(entries) != 1 || entries[0].Name() != filepath.Base(zonePath) {
		t.Errorf("/etc/authmilter after purge holds %v, want only the administrator's zone file", entries)
	}
	if exec.CommandContext(ctx, "dpkg-query", "-W", "authmilter").Run() == nil {
		t.Error("dpkg still knows authmilter after purge")
	}
	if _, err := user.Lookup("authmilter"); err != nil {
		t.Errorf("purge deleted the user authmilter (it is kept on purge): %v", err)
	}
	for _, leftover := range []string{"/var/lib/systemd/deb-systemd-helper-enabled/authmilter.service.dsh-also",
		"/var/lib/systemd/deb-systemd-helper-masked/authmilter.service"} {
		if _, err := os.Lstat(leftover); err == nil {
			t.Errorf("deb-systemd-helper state left after purge: %s", leftover)
		}
	}
}

// runDaemon does what systemd would: the runtime and state directories,
// then the unit's ExecStart line as User=/Group= with no new privileges.
func runDaemon(t *testing.T, ctx context.Context, u *user.User) {
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	var execStart []string
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			execStart = strings.Fields(v)
		}
	}
	if len(execStart) == 0 {
		t.Fatal("no ExecStart= in the unit")
	}
	uid, gid := atoi(u.Uid), atoi(u.Gid)
	for _, dir := range []string{"/run/authmilter", "/var/lib/authmilter"} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	args := append([]string{"--reuid=authmilter", "--regid=authmilter", "--init-groups", "--no-new-privs", "--inh-caps=-all", "--"}, execStart...)
	cmd := exec.Command(interop.Need(t, "setpriv", "util-linux"), args...)
	logs := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
	}()

	deadline := time.Now().Add(15 * time.Second)
	for {
		if st, err := os.Stat(socket); err == nil && st.Mode()&os.ModeSocket != 0 {
			break
		}
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("%s exited: %v\n%s", strings.Join(execStart, " "), err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket %s after 15s:\n%s", socket, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, _ := os.Stat(socket)
	if sys := st.Sys().(*syscall.Stat_t); st.Mode().Perm() != 0o660 || int(sys.Uid) != uid || int(sys.Gid) != gid {
		t.Errorf("%s: mode %v owner %d:%d, want 0660 authmilter:authmilter", socket, st.Mode().Perm(), sys.Uid, sys.Gid)
	}

	// Aligned SPF pass: accepted, with our Authentication-Results.
	act, ar := sendMessage(t, "192.0.2.10", "alice@example.com", "alice@example.com")
	if act.Code != gomilter.ActAccept || !strings.HasPrefix(ar, "mx.package-test.example;") ||
		!strings.Contains(ar, "spf=pass") || !strings.Contains(ar, "dmarc=pass") {
		t.Errorf("aligned message: action %c, Authentication-Results %q\n%s", act.Code, ar, logs.String())
	}
	// A spoof of a p=reject domain from elsewhere: rejected.
	act, _ = sendMessage(t, "198.51.100.7", "alice@example.com", "alice@example.com")
	if act.Code != gomilter.ActReplyCode || act.SMTPCode != 550 {
		t.Errorf("spoofed message: action %c %d %q, want a 550 reject\n%s", act.Code, act.SMTPCode, act.SMTPText, logs.String())
	}

	// ExecReload: SIGHUP reloads the installed configuration.
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, logs, "configuration reloaded", exited)

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(40 * time.Second): // TimeoutStopSec
		t.Fatalf("no exit 40s after SIGTERM:\n%s", logs.String())
	}
	if _, err := os.Lstat(socket); err == nil {
		t.Errorf("%s left after SIGTERM", socket)
	}
	for _, s := range []string{"authmilter listening", "config=" + confPath, "queue_id=", "dmarc=pass", "action=reject", "stopped"} {
		if !strings.Contains(logs.String(), s) {
			t.Errorf("daemon log lacks %q:\n%s", s, logs.String())
		}
	}
}

func waitLog(t *testing.T, logs *syncbuf.Buffer, s string, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), s) {
		select {
		case err := <-exited:
			t.Fatalf("daemon exited (%v) before logging %q:\n%s", err, s, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log after 10s:\n%s", s, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendMessage sends one message through the milter on the socket as the
// MTA would for a client at ip, and returns the final action and our
// Authentication-Results.
func sendMessage(t *testing.T, ip, mailFrom, from string) (*gomilter.Action, string) {
	t.Helper()
	c := gomilter.NewClientWithOptions("unix", socket, gomilter.ClientOptions{
		Dialer:      &net.Dialer{Timeout: 10 * time.Second},
		ReadTimeout: 20 * time.Second, WriteTimeout: 10 * time.Second,
		ActionMask: gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine,
	})
	s, err := c.Session()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	step := func(_ *gomilter.Action, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	step(s.Conn("mail.example.com", gomilter.FamilyInet, 40000, ip))
	step(s.Helo("mail.example.com"))
	step(s.Mail("<"+mailFrom+">", nil))
	step(s.Rcpt("<bob@example.net>", nil))
	step(s.HeaderField("From", " <"+from+">"))
	step(s.HeaderField("Subject", " package test"))
	step(s.HeaderEnd())
	step(s.BodyChunk([]byte("Hello.\r\n")))
	mods, act, err := s.End()
	if err != nil {
		t.Fatal(err)
	}
	ar := ""
	for _, m := range mods {
		if m.Code == gomilter.ActInsertHeader && m.HeaderName == "Authentication-Results" {
			ar = strings.TrimSpace(m.HeaderValue)
		}
	}
	return act, ar
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}
