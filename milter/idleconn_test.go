package milter

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// TestIdleConnStream: whatever the packet sizes and however the bytes are
// split on the wire, go-milter reads exactly the stream that was sent; the
// buffer never holds more than twice what has arrived of a packet, a
// connection keeps at most keepBufSize between packets, and buffers go
// back to the pool.
func TestIdleConnStream(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var stream []byte
	for _, size := range []int{1, 13, 100, 511, 512, 600, 4000, 20000, 65536, 100000, 3, 70000, 9} {
		p := make([]byte, size)
		for i := range p {
			p[i] = byte(rng.IntN(256))
		}
		stream = append(binary.BigEndian.AppendUint32(stream, uint32(size)), p...)
	}
	srv, cli := net.Pipe()
	defer srv.Close()
	go func() {
		// Bytes in random pieces, some with several packets.
		wrng := rand.New(rand.NewPCG(3, 4))
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 1+wrng.IntN(9000))
			cli.Write(rest[:n])
			rest = rest[n:]
		}
		cli.Close()
	}()
	pool := &bufPool{}
	ic := &idleConn{Conn: srv, timeout: 5 * time.Second, pool: pool}
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := ic.Read(buf[:1+rng.IntN(len(buf))])
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ic.off == ic.end && cap(ic.buf) > 2*max(readBufSize, ic.end) {
			t.Fatalf("buffer of %d bytes for a packet of %d", cap(ic.buf), ic.end)
		}
	}
	if !bytes.Equal(got, stream) {
		t.Fatalf("stream differs: got %d bytes, sent %d", len(got), len(stream))
	}
	if cap(ic.buf) > keepBufSize {
		t.Errorf("keeps %d bytes after the last packet", cap(ic.buf))
	}
	ic.release()
	pooled := 0
	for i := range pool.classes {
		pooled += len(pool.classes[i])
	}
	if pooled == 0 {
		t.Error("no buffer went back to the pool")
	}
	if b := pool.get(700); cap(b) != 1024 || len(b) != 0 {
		t.Errorf("get(700): len %d cap %d", len(b), cap(b))
	}
}

// TestIdleConnStalledPacket: 2 bytes of a packet announcing 1 MiB cost no
// more than the first buffer.
func TestIdleConnStalledPacket(t *testing.T) {
	t.Parallel()
	srv, cli := net.Pipe()
	defer cli.Close()
	ic := &idleConn{Conn: srv, timeout: 200 * time.Millisecond, pool: &bufPool{}}
	go cli.Write(append(binary.BigEndian.AppendUint32(nil, maxPacket), 'L', 'X'))
	_, err := ic.Read(make([]byte, 4))
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
	if cap(ic.buf) != readBufSize {
		t.Errorf("buffer of %d bytes for 6 bytes received", cap(ic.buf))
	}
}

// TestIdleConnHoldsModifications: header changes go out with the reply
// that follows them, in one write and in order.
func TestIdleConnHoldsModifications(t *testing.T) {
	t.Parallel()
	srv, cli := net.Pipe()
	defer cli.Close()
	ic := &idleConn{Conn: srv, timeout: 5 * time.Second}
	pkt := func(code byte, data string) []byte {
		return append(append(binary.BigEndian.AppendUint32(nil, uint32(len(data)+1)), code), data...)
	}
	writes := make(chan []byte, 4)
	go func() {
		for {
			b := make([]byte, 1024)
			n, err := cli.Read(b)
			if err != nil {
				close(writes)
				return
			}
			writes <- b[:n]
		}
	}()
	want := append(append(pkt('m', "\x00\x00\x00\x01Authentication-Results\x00\x00"), pkt('i', "\x00\x00\x00\x00X\x00y\x00")...), pkt('a', "")...)
	for _, p := range [][]byte{pkt('m', "\x00\x00\x00\x01Authentication-Results\x00\x00"), pkt('i', "\x00\x00\x00\x00X\x00y\x00"), pkt('a', "")} {
		if n, err := ic.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if got := <-writes; !bytes.Equal(got, want) {
		t.Fatalf("one write %q, want %q", got, want)
	}
	// A reply with nothing held goes out alone.
	ic.Write(pkt('c', ""))
	if got := <-writes; !bytes.Equal(got, pkt('c', "")) {
		t.Fatalf("got %q", got)
	}
	srv.Close()
}
