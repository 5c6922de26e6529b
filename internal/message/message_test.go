package message

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadHeader(t *testing.T) {
	t.Parallel()
	msg := "From: a@example.com\nSubject: hello\n  world\nDKIM-Signature:v=1;\r\n\tb=x\r\n\r\nbody\n"
	br := bufio.NewReader(strings.NewReader(msg))
	fields, err := ReadHeader(br, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Field{
		{"From", []byte("From: a@example.com\r\n")},
		{"Subject", []byte("Subject: hello\r\n  world\r\n")},
		{"DKIM-Signature", []byte("DKIM-Signature:v=1;\r\n\tb=x\r\n")},
	}
	if len(fields) != len(want) {
		t.Fatalf("got %d fields", len(fields))
	}
	for i := range want {
		if fields[i].Name != want[i].Name || !bytes.Equal(fields[i].Raw, want[i].Raw) {
			t.Errorf("field %d = %q %q", i, fields[i].Name, fields[i].Raw)
		}
	}
	if v := fields[1].Value(); v != " hello\r\n  world" {
		t.Errorf("Value = %q", v)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "body\n" {
		t.Errorf("body = %q", rest)
	}
}

func TestReadHeaderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, msg string
		lim       Limits
		want      error
	}{
		{"no colon", "From a\r\n\r\n", Limits{}, ErrMalformed},
		{"leading continuation", " x\r\nFrom: a\r\n\r\n", Limits{}, ErrMalformed},
		{"too large", "Subject: " + strings.Repeat("x", 100) + "\r\n\r\n", Limits{MaxBytes: 50}, ErrHeaderTooLarge},
		{"too many", strings.Repeat("X-A: 1\r\n", 5) + "\r\n", Limits{MaxFields: 4}, ErrTooManyFields},
	}
	for _, tt := range tests {
		_, err := ReadHeader(bufio.NewReader(strings.NewReader(tt.msg)), tt.lim)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestHeaderOnlyMessage(t *testing.T) {
	t.Parallel()
	fields, err := ReadHeader(bufio.NewReader(strings.NewReader("From: a\r\nTo: b")), Limits{})
	if err != nil || len(fields) != 2 || string(fields[1].Raw) != "To: b\r\n" {
		t.Fatalf("%q %v", fields, err)
	}
}

func TestFromMilter(t *testing.T) {
	t.Parallel()
	if f := FromMilter("Subject", " a\n\tb", true); string(f.Raw) != "Subject: a\r\n\tb\r\n" {
		t.Errorf("leadspc: %q", f.Raw)
	}
	if f := FromMilter("Subject", "a", false); string(f.Raw) != "Subject: a\r\n" {
		t.Errorf("no leadspc: %q", f.Raw)
	}
}

func TestBodyCRLF(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	n := 0
	err := BodyCRLF(strings.NewReader("a\nb\r\nc"), 2, func(b []byte) error { n++; out.Write(b); return nil })
	if err != nil || out.String() != "a\r\nb\r\nc" || n < 3 {
		t.Fatalf("%q %d %v", out.String(), n, err)
	}
}

func FuzzReadHeader(f *testing.F) {
	f.Add("From: a\r\nSubject: b\r\n c\r\n\r\nbody")
	f.Add(" x\n:\n\n")
	f.Add("From \t: a@example.com\r\nAuthentication-Results : mx; none\r\n\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		fields, err := ReadHeader(bufio.NewReader(strings.NewReader(s)), Limits{MaxBytes: 4096, MaxFields: 50})
		if err != nil {
			return
		}
		for _, fl := range fields {
			// RFC 5322 §4.5.3: WSP may come between the name and the colon.
			rest, ok := bytes.CutPrefix(fl.Raw, []byte(fl.Name))
			if !bytes.HasSuffix(fl.Raw, []byte("\r\n")) || !ok || !bytes.HasPrefix(bytes.TrimLeft(rest, " \t"), []byte(":")) {
				t.Fatalf("bad field %q", fl.Raw)
			}
			if v := fl.Value(); !bytes.HasSuffix(fl.Raw, []byte(":"+v+"\r\n")) {
				t.Fatalf("Value %q of %q", v, fl.Raw)
			}
		}
	})
}

// TestValueSpaceBeforeColon: RFC 5322 §4.5.3 obs-optional, WSP between the
// name and the colon; the value is what follows the colon.
func TestValueSpaceBeforeColon(t *testing.T) {
	t.Parallel()
	fields, err := ReadHeader(bufio.NewReader(strings.NewReader("From \t: a@example.com\r\n\r\n")), Limits{})
	if err != nil || len(fields) != 1 || fields[0].Name != "From" || fields[0].Value() != " a@example.com" {
		t.Fatalf("%+v %q %v", fields, fields[0].Value(), err)
	}
	if f := (Field{Name: "From", Raw: []byte("From : b\r\n")}); f.Value() != " b" {
		t.Fatalf("Value %q", f.Value())
	}
}

// FuzzBodyCRLF checks BodyCRLF against a byte-by-byte conversion, with
// every chunk within the size asked for.
func FuzzBodyCRLF(f *testing.F) {
	f.Add("a\nb\r\nc", uint8(2))
	f.Add("\r\n\n\r\r\n\n", uint8(1))
	f.Add(strings.Repeat("line\n", 40), uint8(17))
	f.Fuzz(func(t *testing.T, s string, size uint8) {
		chunk := int(size)%40 + 1
		var want []byte
		for i := 0; i < len(s); i++ {
			if s[i] == '\n' && (i == 0 || s[i-1] != '\r') {
				want = append(want, '\r')
			}
			want = append(want, s[i])
		}
		var got []byte
		var sizes []int
		err := BodyCRLF(iotest.OneByteReader(strings.NewReader(s)), chunk, func(b []byte) error {
			sizes = append(sizes, len(b))
			got = append(got, b...)
			return nil
		})
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%q: got %q, want %q (%v)", s, got, want, err)
		}
		// Full chunks, as Postfix sends them; only the last may be short.
		for i, n := range sizes {
			if n == 0 || n > chunk || n < chunk && i < len(sizes)-1 {
				t.Fatalf("chunk sizes %v, chunk %d", sizes, chunk)
			}
		}
	})
}

// milterRef is FromMilterBytes's field text written the plain way: a
// byte at a time, CR added before each LF that lacks one.
func milterRef(name, value string, leadingSpace bool) string {
	out := name + ":"
	if !leadingSpace {
		out += " "
	}
	for i := 0; i < len(value); i++ {
		if value[i] == '\n' && (i == 0 || value[i-1] != '\r') {
			out += "\r"
		}
		out += value[i : i+1]
	}
	return out + "\r\n"
}

func TestFromMilterLineEnds(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", "\n", "\r\n", "\n\n", "\r\r\n", "a\nb\r\nc\n", " x\n\ty\n", "\n\r\n\r"} {
		for _, lead := range []bool{false, true} {
			f := FromMilterBytes([]byte("X-T"), []byte(v), lead)
			if want := milterRef("X-T", v, lead); string(f.Raw) != want {
				t.Errorf("%q lead %v: %q, want %q", v, lead, f.Raw, want)
			}
		}
	}
}

func FuzzFromMilter(f *testing.F) {
	f.Add("Subject", "a\nb\r\n\tc", false)
	f.Add("X", "\n", true)
	f.Fuzz(func(t *testing.T, name, value string, lead bool) {
		got := FromMilterBytes([]byte(name), []byte(value), lead)
		if want := milterRef(name, value, lead); string(got.Raw) != want || got.Name != name {
			t.Fatalf("%q %q: %q, want %q", name, value, got.Raw, want)
		}
	})
}
