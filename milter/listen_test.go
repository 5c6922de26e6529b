package milter

import "testing"

func TestParseListen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec, network, address string
		err                    bool
	}{
		{"inet:127.0.0.1:8895", "tcp", "127.0.0.1:8895", false},
		{"inet:[::1]:8895", "tcp", "[::1]:8895", false},
		{"inet:8895@127.0.0.1", "tcp", "127.0.0.1:8895", false},
		{"inet6:8895@[::1]", "tcp6", "[::1]:8895", false},
		{"inet:8895@localhost", "tcp", "localhost:8895", false},
		{"unix:/run/authmilter/authmilter.sock", "unix", "/run/authmilter/authmilter.sock", false},
		{"local:/tmp/x.sock", "unix", "/tmp/x.sock", false},
		{"/tmp/x.sock", "unix", "/tmp/x.sock", false},
		{"127.0.0.1:8895", "tcp", "127.0.0.1:8895", false},
		{"inet:8895", "", "", true},
		{"inet::8895", "", "", true},
		{"inet:127.0.0.1:99999", "", "", true},
		{"inet:127.0.0.1:http", "", "", true},
		{"unix:", "", "", true},
		{"tcp:1.2.3.4:5", "", "", true},
		{"", "", "", true},
	}
	for _, tt := range tests {
		network, address, err := ParseListen(tt.spec)
		if tt.err {
			if err == nil {
				t.Errorf("ParseListen(%q) = %s %s, want error", tt.spec, network, address)
			}
			continue
		}
		if err != nil || network != tt.network || address != tt.address {
			t.Errorf("ParseListen(%q) = %q, %q, %v; want %q, %q", tt.spec, network, address, err, tt.network, tt.address)
		}
	}
}
