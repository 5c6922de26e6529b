package milter

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// ParseListen turns a milter socket specification into a network and
// address for net.Listen. It accepts Postfix's notation ("inet:HOST:PORT",
// "inet:[::1]:PORT", "unix:/path", "local:/path"), OpenDKIM's
// ("inet:PORT@HOST", "inet6:PORT@[::1]") and a bare "/path" or "HOST:PORT".
// An inet address without a host is refused: listening on every interface
// must be asked for explicitly (0.0.0.0 or [::]).
func ParseListen(spec string) (network, address string, err error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return "", "", fmt.Errorf("listen %q: empty address", spec)
	}
	kind, rest, found := strings.Cut(s, ":")
	if !found || strings.HasPrefix(s, "/") {
		if strings.HasPrefix(s, "/") {
			return "unix", s, nil
		}
		return "", "", fmt.Errorf("listen %q: want inet:HOST:PORT, inet:PORT@HOST or unix:/path", spec)
	}
	switch strings.ToLower(kind) {
	case "unix", "local":
		if rest == "" {
			return "", "", fmt.Errorf("listen %q: empty socket path", spec)
		}
		return "unix", rest, nil
	case "inet", "inet4", "inet6":
		var host, port string
		if p, h, ok := strings.Cut(rest, "@"); ok {
			host, port = strings.Trim(h, "[]"), p
		} else if host, port, err = net.SplitHostPort(rest); err != nil {
			return "", "", fmt.Errorf("listen %q: %v", spec, err)
		}
		if host == "" {
			return "", "", fmt.Errorf("listen %q: no host (use 127.0.0.1, ::1, or 0.0.0.0 to listen everywhere)", spec)
		}
		n, perr := strconv.Atoi(port)
		if perr != nil || n < 0 || n > 65535 {
			return "", "", fmt.Errorf("listen %q: invalid port %q", spec, port)
		}
		network = "tcp"
		switch strings.ToLower(kind) {
		case "inet4":
			network = "tcp4"
		case "inet6":
			network = "tcp6"
		}
		return network, net.JoinHostPort(host, port), nil
	default:
		// "HOST:PORT" without a scheme.
		if host, port, herr := net.SplitHostPort(s); herr == nil && host != "" {
			if _, perr := strconv.Atoi(port); perr == nil {
				return "tcp", s, nil
			}
		}
		return "", "", fmt.Errorf("listen %q: unknown socket type %q (want inet or unix)", spec, kind)
	}
}

// Listen opens the listener for spec. A stale unix socket left by a crashed
// process is removed first; a path that is not a socket is left alone.
func Listen(spec string) (net.Listener, error) {
	network, address, err := ParseListen(spec)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if st, serr := os.Lstat(address); serr == nil && st.Mode()&os.ModeSocket != 0 {
			if c, derr := net.Dial("unix", address); derr == nil {
				c.Close()
				return nil, fmt.Errorf("listen %s: another process is serving this socket", spec)
			}
			os.Remove(address)
		}
	}
	// No TCP keep-alive on accepted connections: the idle timeout already
	// ends a connection whose MTA went away, and keep-alive would cost four
	// setsockopt calls per connection (Postfix may open one per message).
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), network, address)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", spec, err)
	}
	if network == "unix" {
		// Postfix's smtpd runs as an unprivileged user: let the group in.
		_ = os.Chmod(address, 0o660)
	}
	return ln, nil
}
