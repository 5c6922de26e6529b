package main

import (
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte(`
listen: unix:/run/authmilter/authmilter.sock
authserv_id: mx.example.net
dns:
  servers: [127.0.0.1:53]
  timeout: 1500ms
arc:
  trusted_sealers: [google.com]
policy:
  temperror: accept
  allow_networks: [192.0.2.0/24, 2001:db8::1]
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AuthservID != "mx.example.net" || cfg.DNS.Timeout != 1500*time.Millisecond ||
		cfg.Policy.Temperror != "accept" || !*cfg.Policy.Enforce || cfg.DMARC.OrgDomain != "treewalk" {
		t.Fatalf("unexpected config %+v", cfg)
	}
	if n, err := cfg.threads(); n != 0 || err != nil || cfg.Threads != "auto" {
		t.Errorf("threads by default: %q (%d, %v), want auto", cfg.Threads, n, err)
	}
	cfg, err = ParseConfig([]byte("threads: 2\n"), "test.yaml")
	if n, _ := cfg.threads(); err != nil || n != 2 {
		t.Errorf("threads: 2 gives %d, %v", n, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, text, want string }{
		{"unknown key with line", "listen: inet:127.0.0.1:1\nlisten_port: 5\n", "cfg.yaml:2: field listen_port not found"},
		{"nested unknown", "dns:\n  server: [1.1.1.1]\n", "cfg.yaml:2: field server not found"},
		{"bad duration", "dns:\n  timeout: soon\n", "cfg.yaml:2:"},
		{"bad enum", "policy:\n  temperror: maybe\n", "policy.temperror \"maybe\""},
		{"bad network", "policy:\n  allow_networks: [10.0.0.0/33]\n", "policy.allow_networks"},
		{"partial seal", "arc:\n  seal:\n    domain: example.com\n", "arc.seal"},
		{"bad authserv", "authserv_id: \"a;b\"\n", "authserv_id"},
		{"pprof without metrics", "metrics:\n  pprof: true\n", "metrics.pprof: needs metrics.listen"},
		{"pprof not loopback", "metrics:\n  listen: 0.0.0.0:9895\n  pprof: true\n", "not a loopback address"},
		{"pprof on a public address", "metrics:\n  listen: \"192.0.2.1:9895\"\n  pprof: true\n", "not a loopback address"},
		{"threads zero", "threads: 0\n", `threads "0": must be auto or a number from 1 to 1024`},
		{"threads word", "threads: many\n", `threads "many"`},
		{"bad list action", "dmarc:\n  list_action: drop\n", `dmarc.list_action "drop"`},
		{"bad from checks", "policy:\n  from_checks: yes\n", `policy.from_checks "yes"`},
		{"bad allow kind", "policy:\n  allow_domains: [\"arc:example.com\"]\n", `want DOMAIN, dkim:DOMAIN or spf:DOMAIN`},
		{"bad allow domain", "policy:\n  allow_domains: [\"dkim:\"]\n", `policy.allow_domains: "dkim:": not a valid domain name`},
		{"bad ignore_mail_from", "policy:\n  ignore_mail_from: [\"a b\"]\n", `policy.ignore_mail_from`},
		{"bad ignore_rcpt", "policy:\n  ignore_rcpt: [\"@example.com\"]\n", `policy.ignore_rcpt`},
		{"reports store", "reports:\n  store: mysql://x\n", `reports.store "mysql://x"`},
		{"reports interval short", "reports:\n  interval: 30s\n", "reports.interval 30s"},
		{"reports interval not dividing a day", "reports:\n  interval: 7m\n", "reports.interval 7m0s"},
		{"reports send without org", "reports:\n  send: true\n  email: r@example.net\n", "reports.send: needs reports.org_name"},
		{"reports send without email", "reports:\n  send: true\n  org_name: X\n", "reports.email"},
		{"reports smtp address", "reports:\n  smtp: {address: localhost}\n", "reports.smtp.address"},
		{"reports smtp auth half", "reports:\n  smtp: {username: u}\n", "username and password_file go together"},
		{"reports max_recipients", "reports:\n  max_recipients: 0\n", "reports.max_recipients 0"},
	}
	for _, tt := range tests {
		_, err := ParseConfig([]byte(tt.text), "cfg.yaml")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want containing %q", tt.name, err, tt.want)
		}
	}
}

func TestDefaultConfigValid(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConfig(nil, "empty.yaml"); err != nil {
		t.Fatalf("empty file: %v", err)
	}
}

func TestParseConfigPprof(t *testing.T) {
	t.Parallel()
	if DefaultConfig().Metrics.Pprof {
		t.Fatal("pprof is on by default")
	}
	for _, listen := range []string{"127.0.0.1:9895", "[::1]:9895", "localhost:9895", "127.0.0.2:0"} {
		cfg, err := ParseConfig([]byte("metrics:\n  listen: \""+listen+"\"\n  pprof: true\n"), "cfg.yaml")
		if err != nil {
			t.Errorf("%s: %v", listen, err)
			continue
		}
		if !cfg.Metrics.Pprof || cfg.Metrics.Listen != listen {
			t.Errorf("%s: metrics %+v", listen, cfg.Metrics)
		}
	}
}

// TestSetThreads: the GOMAXPROCS environment variable wins, a number is
// applied, auto leaves the runtime's choice alone.
func TestSetThreads(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(orig)
	cfg := DefaultConfig()
	cfg.Threads = "3"
	t.Setenv("GOMAXPROCS", "2")
	if got := setThreads(cfg); got != "GOMAXPROCS=2" || runtime.GOMAXPROCS(0) != orig {
		t.Errorf("with GOMAXPROCS set: %q, GOMAXPROCS %d", got, runtime.GOMAXPROCS(0))
	}
	os.Unsetenv("GOMAXPROCS")
	if got := setThreads(cfg); got != "3" || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("threads: 3 gives %q, GOMAXPROCS %d", got, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(orig)
	if got := setThreads(DefaultConfig()); got != "auto" || runtime.GOMAXPROCS(0) != orig {
		t.Errorf("default: %q, GOMAXPROCS %d; want auto, %d", got, runtime.GOMAXPROCS(0), orig)
	}
}

// TestPolicyConfigToEngine: the exemption keys reach the engine's policy,
// allow_domains split by kind.
func TestPolicyConfigToEngine(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte(`
dmarc:
  list_action: quarantine
policy:
  allow_domains: [Example.org, "dkim:Lists.Example.net", "spf:bounce.example.com."]
  ignore_mail_from: [list.example]
  ignore_rcpt: [postmaster@, dmarc@example.net, example.org]
  from_checks: reject
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := newEngine(cfg, nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := e.Policy
	got := strings.Join([]string{strings.Join(p.AllowDomains, ","), strings.Join(p.AllowDKIM, ","), strings.Join(p.AllowSPF, ","),
		strings.Join(p.IgnoreMailFrom, ","), strings.Join(p.IgnoreRcpt, ","), string(p.ListAction), string(p.FromChecks)}, "|")
	want := "example.org|lists.example.net|bounce.example.com|list.example|postmaster@,dmarc@example.net,example.org|quarantine|reject"
	if got != want {
		t.Errorf("policy %s, want %s", got, want)
	}
}
