package postfixtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// HeaderField is one header field of a delivered message, in file order.
type HeaderField struct {
	Name  string // as written, e.g. "X-Test-Milter"
	Value string // unfolded, surrounding whitespace trimmed
	Raw   string // the field as written, folding and line ends included
}

// Delivered is one message that virtual(8) wrote to the Maildir, with LF
// line ends. The header starts with Return-Path, X-Original-To and
// Delivered-To (added by virtual) above smtpd's Received field; fields a
// milter adds (SMFIR_ADDHEADER) come last, inserted ones where inserted.
type Delivered struct {
	Path   string
	Raw    []byte
	Header []HeaderField
	Body   []byte
}

// Get returns the value of the first field named name (case-insensitive),
// or "".
func (d Delivered) Get(name string) string {
	for _, f := range d.Header {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Values returns the values of every field named name, in order.
func (d Delivered) Values(name string) []string {
	var vs []string
	for _, f := range d.Header {
		if strings.EqualFold(f.Name, name) {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

// ParseMessage splits a message into ordered header fields and body.
// Both LF and CRLF line ends are accepted.
func ParseMessage(raw []byte) ([]HeaderField, []byte) {
	var fields []HeaderField
	rest := raw
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		var line []byte
		if i < 0 {
			line, rest = rest, nil
		} else {
			line, rest = rest[:i+1], rest[i+1:]
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		if len(trimmed) == 0 {
			return fields, rest
		}
		if (trimmed[0] == ' ' || trimmed[0] == '\t') && len(fields) > 0 {
			f := &fields[len(fields)-1]
			f.Raw += string(line)
			f.Value = strings.TrimSpace(f.Value + " " + strings.TrimSpace(string(trimmed)))
			continue
		}
		name, value, _ := strings.Cut(string(trimmed), ":")
		fields = append(fields, HeaderField{
			Name:  name,
			Value: strings.TrimSpace(value),
			Raw:   string(line),
		})
	}
	return fields, nil
}

// Deliveries returns every message delivered so far, oldest first.
func (in *Instance) Deliveries(t testing.TB) []Delivered {
	t.Helper()
	ds, err := in.readMaildir()
	if err != nil {
		in.fatalf(t, "reading %s: %v", in.mailDir, err)
	}
	return ds
}

// WaitDelivered waits until at least n messages have been delivered since
// Start (the count is cumulative) and returns all of them, oldest first. On
// timeout it fails the test, showing the queue and the end of the log.
func (in *Instance) WaitDelivered(t testing.TB, n int, timeout time.Duration) []Delivered {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ds, err := in.readMaildir()
		if err != nil {
			in.fatalf(t, "reading %s: %v", in.mailDir, err)
		}
		if len(ds) >= n {
			return ds
		}
		if time.Now().After(deadline) {
			queue := "(unavailable)"
			if out, err := in.command("postqueue", "-p"); err == nil {
				queue = string(out)
			}
			in.fatalf(t, "%d message(s) delivered after %s, want %d\n--- postqueue -p ---\n%s", len(ds), timeout, n, queue)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type maildirEntry struct {
	path       string
	secs, usec int64
	mtime      time.Time
}

func (in *Instance) readMaildir() ([]Delivered, error) {
	var entries []maildirEntry
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(in.mailDir, sub)
		ents, err := readDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			secs, usec := maildirTime(e.Name())
			entries = append(entries, maildirEntry{filepath.Join(dir, e.Name()), secs, usec, info.ModTime()})
		}
	}
	// Postfix names files "<seconds>.V<dev>I<inode>M<microseconds>.<host>".
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if a.secs != b.secs {
			return a.secs < b.secs
		}
		if a.usec != b.usec {
			return a.usec < b.usec
		}
		if !a.mtime.Equal(b.mtime) {
			return a.mtime.Before(b.mtime)
		}
		return a.path < b.path
	})
	ds := make([]Delivered, 0, len(entries))
	for _, e := range entries {
		raw, err := os.ReadFile(e.path)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", e.path, err)
		}
		h, body := ParseMessage(raw)
		ds = append(ds, Delivered{Path: e.path, Raw: raw, Header: h, Body: body})
	}
	return ds, nil
}

func maildirTime(name string) (secs, usec int64) {
	first, rest, ok := strings.Cut(name, ".")
	if !ok {
		return 0, 0
	}
	secs, _ = strconv.ParseInt(first, 10, 64)
	uniq, _, _ := strings.Cut(rest, ".")
	if i := strings.LastIndexByte(uniq, 'M'); i >= 0 {
		usec, _ = strconv.ParseInt(uniq[i+1:], 10, 64)
	}
	return secs, usec
}
