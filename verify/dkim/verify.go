package dkim

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/authmilter/authmilter/dnscache"
	"github.com/authmilter/authmilter/internal/message"
)

// bodyChunk is the size of the reader's buffer and of the pieces Verify
// feeds a Verifier: large enough that the cost of a Write vanishes, small
// enough not to weigh on a Verify of a small message (a milter gets chunks
// of up to 64 KiB; any size gives the same results).
const bodyChunk = 16 * 1024

// Verify reads a whole message (LF or CRLF line ends) from msg and verifies
// its DKIM signatures. It returns one Signature per DKIM-Signature field in
// header order, an empty slice when there is none, and an error only when
// the message cannot be read.
func Verify(ctx context.Context, r dnscache.Resolver, msg io.Reader, opts *Options) ([]Signature, error) {
	br := bufio.NewReaderSize(msg, bodyChunk)
	header, err := message.ReadHeader(br, message.Limits{})
	if err != nil {
		return nil, fmt.Errorf("dkim: reading header: %w", err)
	}
	v := NewVerifier(ctx, r, header, opts)
	err = message.BodyCRLF(br, bodyChunk, func(b []byte) error {
		_, err := v.Write(b)
		return err
	})
	if err != nil {
		v.Abort()
		return nil, fmt.Errorf("dkim: reading body: %w", err)
	}
	return v.Close(), nil
}
