package dnscache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// udpBufferSize is the receive buffer for UDP replies: larger than the
// 1232 octets we advertise, so a server that sends more is still read.
const udpBufferSize = 4096

// exchange sends q to server over network ("udp" or "tcp") and returns the
// reply, before deadline and until ctx ends. A reply of more than maxBytes
// octets is not unpacked (errTooLarge).
//
// miekg/dns's Client.Exchange obeys a context's deadline but not its
// cancellation, so the exchange is done here on a dns.Conn whose deadline
// is moved to the past when ctx ends, which interrupts the read at once.
// Each exchange dials a new socket, so UDP queries leave from a fresh
// random port (RFC 5452 §9.2); the socket is connected, so only the
// server's datagrams arrive.
func exchange(ctx context.Context, network, server string, q *dns.Msg, deadline time.Time, maxBytes int) (*dns.Msg, error) {
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dialer := net.Dialer{Deadline: deadline}
	conn, err := dialer.DialContext(ctx, network, server)
	if err != nil {
		return nil, err
	}
	co := &dns.Conn{Conn: conn, UDPSize: udpBufferSize}
	defer co.Close()
	if err := co.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = co.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if err := co.WriteMsg(q); err != nil {
		return nil, err
	}
	udp := network == "udp"
	for {
		r, err := readReply(co, maxBytes)
		if err != nil && r == nil {
			return nil, err // network error or timeout
		}
		if r.Id != q.Id {
			if udp {
				continue // a late reply to an earlier query, or a forgery
			}
			return nil, errMalformed("reply ID does not match the query")
		}
		var tooLarge errTooLarge
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		if err != nil {
			// The header was read but the rest did not unpack. A truncated
			// reply may legitimately end mid-record: it is only used to
			// know that TCP is needed.
			if udp && r.Truncated {
				return r, nil
			}
			return nil, errMalformed(err.Error())
		}
		if !sameQuestion(r, q) {
			if udp {
				continue // RFC 5452 §4.2: accept only a reply to our question
			}
			return nil, errMalformed("reply question does not match the query")
		}
		return r, nil
	}
}

// errTooLarge is a reply over Config.MaxAnswerBytes.
type errTooLarge struct{ size, max int }

func (e errTooLarge) Error() string {
	return fmt.Sprintf("reply of %d octets over the limit of %d (max_answer_bytes)", e.size, e.max)
}

// readReply reads one message from co, as dns.Conn.ReadMsg does, but does
// not unpack a message longer than maxBytes: it returns errTooLarge with
// only the ID filled in, so that a stray datagram still counts as one.
// The read itself is bounded by the transport: UDP by the receive buffer,
// TCP by its 16-bit length prefix (RFC 1035 §4.2.2).
func readReply(co *dns.Conn, maxBytes int) (*dns.Msg, error) {
	p, err := co.ReadMsgHeader(nil)
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	if len(p) > maxBytes {
		if len(p) >= 2 {
			m.Id = binary.BigEndian.Uint16(p)
		}
		return m, errTooLarge{len(p), maxBytes}
	}
	if err := m.Unpack(p); err != nil {
		return m, err
	}
	return m, nil
}

// sameQuestion reports whether reply r answers the question of q
// (RFC 5452 §4.2: name, type and class must match; the name without
// regard to case, RFC 4343).
func sameQuestion(r, q *dns.Msg) bool {
	if len(r.Question) != 1 {
		// A truncated reply may omit the question section.
		return len(r.Question) == 0 && r.Truncated
	}
	a, b := r.Question[0], q.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}
