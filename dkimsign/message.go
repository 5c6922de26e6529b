package dkimsign

import (
	"bufio"
	"crypto"
	"fmt"
	"io"

	"github.com/authmilter/authmilter/internal/canon"
	"github.com/authmilter/authmilter/internal/message"
)

// NewBodyHasher returns the body hasher a signature needs: relaxed
// canonicalization, SHA-256, the whole body (no l=). An ARC validator's
// seal body hash is the same one (canon.BodySet shares them).
func NewBodyHasher() *canon.BodyHasher {
	return canon.NewBodyHasher(canon.Relaxed, crypto.SHA256, -1)
}

// SignMessage reads a whole message from r (CRLF or LF line ends) and signs
// it with keys. It returns the header fields read and the signatures; the
// signed message is the signatures' fields, then the header, then the
// body as read.
func SignMessage(r io.Reader, keys []Key, opts *Options) ([]message.Field, []Signature, error) {
	br := bufio.NewReader(r)
	header, err := message.ReadHeader(br, message.Limits{})
	if err != nil {
		return nil, nil, fmt.Errorf("dkimsign: reading the header: %w", err)
	}
	bh := NewBodyHasher()
	if err := message.BodyCRLF(br, 64<<10, func(p []byte) error { _, err := bh.Write(p); return err }); err != nil {
		return nil, nil, fmt.Errorf("dkimsign: reading the body: %w", err)
	}
	sigs, err := Sign(header, bh.Sum(), keys, opts)
	return header, sigs, err
}
