package dnscache

import (
	"context"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// bigTXT returns a TXT record at name holding n octets of data, in
// character-strings of 255 octets (RFC 1035 §3.3.14).
func bigTXT(name string, n int) *dns.TXT {
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}}
	for n > 0 {
		k := min(n, 255)
		rr.Txt = append(rr.Txt, strings.Repeat("a", k))
		n -= k
	}
	return rr
}

// A reply larger than Config.MaxAnswerBytes is a temporary failure, over
// UDP and over TCP after truncation; within the bound (by default the
// 65535-octet TCP maximum) a 60 KB record comes through whole.
func TestClientMaxAnswerBytes(t *testing.T) {
	t.Parallel()
	// UDP: 2000 octets of TXT in one datagram; TCP: 60000 after a truncated
	// UDP reply.
	handler := func(size int, tc bool) dns.HandlerFunc {
		return func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			if tc && w.RemoteAddr().Network() == "udp" {
				m.Truncated = true
			} else {
				m.Answer = append(m.Answer, bigTXT(r.Question[0].Name, size))
			}
			_ = w.WriteMsg(m)
		}
	}
	tests := []struct {
		name     string
		size     int
		tc       bool
		maxBytes int
		wantErr  bool
	}{
		{"udp within default", 2000, false, 0, false},
		{"udp over 1024", 2000, false, 1024, true},
		{"tcp 60 KB within default", 60000, true, 0, false},
		{"tcp 60 KB over 32 KiB", 60000, true, 32 << 10, true},
		{"bound under 512 raised to 512", 2000, false, 100, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, handler(tt.size, tt.tc))
			cfg := testConfig(srv.addr)
			cfg.MaxAnswerBytes = tt.maxBytes
			c := newTestClient(t, cfg)
			txt, _, err := c.LookupTXT(context.Background(), "big.example")
			if !tt.wantErr {
				if err != nil || len(txt) != 1 || len(txt[0]) != tt.size {
					t.Fatalf("LookupTXT: %d records, %v; want one of %d octets", len(txt), err, tt.size)
				}
				return
			}
			de := wantErr(t, err, ErrTemporary, false)
			if !strings.Contains(de.Err, "max_answer_bytes") {
				t.Errorf("error %q does not name the limit", de.Err)
			}
		})
	}
}

func TestConfigMaxAnswerBytesDefaults(t *testing.T) {
	t.Parallel()
	for in, want := range map[int]int{0: DefaultMaxAnswerBytes, -1: DefaultMaxAnswerBytes, 100: MinMaxAnswerBytes, 4096: 4096} {
		if got := (Config{MaxAnswerBytes: in}).withDefaults().MaxAnswerBytes; got != want {
			t.Errorf("MaxAnswerBytes %d → %d, want %d", in, got, want)
		}
	}
}
