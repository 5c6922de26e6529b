// Package pgtest starts a private PostgreSQL server for a test: initdb and
// pg_ctl from Debian's postgresql package into a temporary directory,
// listening only on a Unix socket in that directory, stopped and removed
// when the test ends.
package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/authmilter/authmilter/internal/testsupport/interop"
)

// EnvBin names a directory holding initdb and pg_ctl, overriding the
// search of /usr/lib/postgresql/*/bin.
const EnvBin = "AUTHMILTER_PG_BIN"

// Server is a running test server.
type Server struct {
	Dir  string // the data directory's parent, also the socket directory
	Bin  string
	cred *syscall.Credential

	running bool
}

// DSN returns a postgres:// URL for database db on the server.
func (s *Server) DSN(db string) string {
	return "postgres://postgres@/" + db + "?host=" + s.Dir + "&sslmode=disable"
}

// bin finds the directory of initdb and pg_ctl, or skips the test.
func bin(t testing.TB) string {
	if d := os.Getenv(EnvBin); d != "" {
		return d
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i]
		}
	}
	interop.Need(t, "pg_ctl-in-/usr/lib/postgresql/VERSION/bin", "postgresql")
	return ""
}

// Start starts a server and stops it when t ends. PostgreSQL refuses to run
// as root; a root test runs it as the user nobody.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{Bin: bin(t)}
	// A short path: the socket's path must fit in sun_path (108 bytes).
	dir, err := os.MkdirTemp("", "pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s.Dir = dir
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("pgtest: running as root and no user nobody to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	s.run(t, 60*time.Second, "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	s.Restart(t)
	t.Cleanup(func() {
		if s.running {
			s.Stop(t)
		}
	})
	return s
}

// Stop stops the server at once (a crash, as far as clients can tell;
// committed transactions survive: commits are synchronous, only fsync is
// off, which matters only when the machine itself crashes).
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.run(t, 60*time.Second, "pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-m", "immediate", "-w", "-t", "50", "stop")
	s.running = false
}

// Restart starts a stopped server again.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	opts := "-k " + s.Dir + " -c listen_addresses= -c fsync=off -c full_page_writes=off"
	s.run(t, 60*time.Second, "pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-l", filepath.Join(s.Dir, "log"), "-o", opts, "-w", "-t", "50", "start")
	s.running = true
}

// run runs one of the server's programs as the server's user.
func (s *Server) run(t testing.TB, timeout time.Duration, prog string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.Bin, prog), args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
		t.Fatalf("pgtest: %s: %v\n%s\n%s", prog, err, out.Bytes(), log)
	}
}

// CreateDB creates an empty database named name.
func (s *Server) CreateDB(t testing.TB, name string) string {
	t.Helper()
	s.run(t, 30*time.Second, "createdb", "-h", s.Dir, "-U", "postgres", name)
	return s.DSN(name)
}

// String describes the server.
func (s *Server) String() string { return fmt.Sprintf("PostgreSQL in %s", s.Dir) }
