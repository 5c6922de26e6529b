package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/authmilter/authmilter/internal/message"
)

// mail is one corpus message, prepared for sending: header fields as the
// MTA passes them and the body in protocol-sized CRLF chunks.
type mail struct {
	name     string
	class    string
	ip       netip.Addr
	helo     string
	mailFrom string
	rcpts    []string
	fields   []field
	body     [][]byte
	size     int
}

type field struct{ name, value string }

// sidecar is the NAME.env envelope file.
type sidecar struct {
	ClientIP string   `json:"client_ip"`
	HELO     string   `json:"helo"`
	MailFrom string   `json:"mail_from"`
	Rcpts    []string `json:"rcpts"`
	Class    string   `json:"class"`
}

// loadCorpus reads every NAME.eml of dir (with its NAME.env) whose name
// matches match (nil: all), sorted by name.
func loadCorpus(dir string, match *regexp.Regexp) ([]*mail, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []*mail
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".eml")
		if match != nil && !match.MatchString(name) {
			continue
		}
		m, err := loadMail(p, strings.TrimSuffix(p, ".eml")+".env")
		if err != nil {
			return nil, err
		}
		m.name = name
		if m.class == "" {
			m.class, _, _ = strings.Cut(name, ".")
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("corpus %s: no message (NAME.eml with NAME.env) matches", dir)
	}
	return out, nil
}

func loadMail(emlPath, envPath string) (*mail, error) {
	envData, err := os.ReadFile(envPath)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	var env sidecar
	if err := json.Unmarshal(envData, &env); err != nil {
		return nil, fmt.Errorf("envelope %s: %w", envPath, err)
	}
	ip, err := netip.ParseAddr(env.ClientIP)
	if err != nil {
		return nil, fmt.Errorf("envelope %s: client_ip: %w", envPath, err)
	}
	if env.HELO == "" || len(env.Rcpts) == 0 {
		return nil, fmt.Errorf("envelope %s: helo and rcpts are required", envPath)
	}
	data, err := os.ReadFile(emlPath)
	if err != nil {
		return nil, err
	}
	m := &mail{class: env.Class, ip: ip.Unmap(), helo: env.HELO, mailFrom: env.MailFrom, rcpts: env.Rcpts, size: len(data)}
	br := bufio.NewReader(bytes.NewReader(data))
	fields, err := message.ReadHeader(br, message.Limits{MaxBytes: 16 << 20, MaxFields: 100000})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", emlPath, err)
	}
	for _, f := range fields {
		m.fields = append(m.fields, milterField(f))
	}
	// The MTA sends the body with CRLF line ends in chunks of at most
	// 65535 bytes.
	err = message.BodyCRLF(br, maxBodyChunk, func(chunk []byte) error {
		m.body = append(m.body, bytes.Clone(chunk))
		return nil
	})
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", emlPath, err)
	}
	return m, nil
}

// milterField is a raw header field as the MTA passes it: the name, and
// the value after the colon with its leading space, folded lines joined
// with LF and no final line end.
func milterField(f message.Field) field {
	raw := string(f.Raw)
	_, value, _ := strings.Cut(raw, ":")
	value = strings.TrimSuffix(value, "\n")
	value = strings.TrimSuffix(value, "\r")
	value = strings.ReplaceAll(value, "\r\n", "\n")
	return field{name: f.Name, value: value}
}
