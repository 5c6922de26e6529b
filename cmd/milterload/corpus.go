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
	"github.com/authmilter/authmilter/milter"
)

// mail is one corpus message, prepared for sending.
type mail struct {
	name     string
	class    string
	ip       netip.Addr
	helo     string
	mailFrom string
	rcpts    []string
	size     int
	wire     encoded
}

// encoded is what of a message goes to the milter the same in every
// transaction, encoded once when the corpus is loaded: command data, macro
// values, and the header and body commands as whole packets.
type encoded struct {
	clientAddr  string // {client_addr}
	clientMacro string // _: "unknown [ADDR]"
	connect     []byte // SMFIC_CONNECT data
	helo        []byte // SMFIC_HELO data
	mail        []byte // SMFIC_MAIL data
	mailHost    string // {mail_host}
	rcpts       []encodedRcpt
	// headers are the SMFIC_HEADER packets of the message's fields as the
	// MTA passes them: [0] values without their leading space, [1] with it
	// (SMFIP_HDR_LEADSPC).
	headers [2][][]byte
	// body are the SMFIC_BODY packets: the body with CRLF line ends in
	// chunks of at most 65535 bytes.
	body [][]byte
}

type encodedRcpt struct {
	addr, host string // {rcpt_addr}, {rcpt_host}
	data       []byte // SMFIC_RCPT data
}

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
	m.encodeEnvelope()
	for lead := range m.wire.headers {
		var buf []byte
		for _, f := range fields {
			start := len(buf)
			buf = appendHeaderPacket(buf, f.Name, milterValue(f), lead == 1)
			m.wire.headers[lead] = append(m.wire.headers[lead], buf[start:len(buf):len(buf)])
		}
	}
	// The MTA sends the body with CRLF line ends in chunks of at most
	// 65535 bytes.
	err = message.BodyCRLF(br, maxBodyChunk, func(chunk []byte) error {
		m.wire.body = append(m.wire.body, appendPacket(nil, milter.CmdBody, chunk))
		return nil
	})
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", emlPath, err)
	}
	return m, nil
}

// encodeEnvelope encodes the command data and macro values of the client,
// HELO and envelope.
func (m *mail) encodeEnvelope() {
	w := &m.wire
	w.clientAddr = m.ip.String()
	w.clientMacro = "unknown [" + w.clientAddr + "]"
	// SMFIC_CONNECT: host name, family, port (49152), address.
	family := milter.FamilyInet
	if m.ip.Is6() {
		family = milter.FamilyInet6
	}
	w.connect = append([]byte("unknown\x00"), family, 0xc0, 0x00)
	w.connect = append(append(w.connect, w.clientAddr...), 0)
	w.helo = cstr(m.helo)
	w.mail = cstr("<" + m.mailFrom + ">")
	_, w.mailHost, _ = strings.Cut(m.mailFrom, "@")
	for _, r := range m.rcpts {
		_, host, _ := strings.Cut(r, "@")
		w.rcpts = append(w.rcpts, encodedRcpt{addr: r, host: host, data: cstr("<" + r + ">")})
	}
}

func cstr(s string) []byte { return append([]byte(s), 0) }

// milterValue is a raw header field's value as the MTA passes it: after
// the colon with its leading space, folded lines joined with LF and no
// final line end.
func milterValue(f message.Field) []byte {
	_, value, _ := bytes.Cut(f.Raw, []byte(":"))
	value = bytes.TrimSuffix(value, []byte("\n"))
	value = bytes.TrimSuffix(value, []byte("\r"))
	return bytes.ReplaceAll(value, []byte("\r\n"), []byte("\n"))
}
