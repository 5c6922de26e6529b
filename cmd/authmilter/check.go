package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"

	"github.com/authmilter/authmilter/dkimsign"
	"github.com/authmilter/authmilter/engine"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/verify/spf"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// runCheck implements `authmilter check`: one message judged exactly as the
// daemon would, from a file or standard input. The exit status is 0 whatever
// the verdict; usage and input errors exit non-zero.
func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: the embedded defaults)")
	zone := fs.String("zone", "", "answer DNS from this RFC 1035 zone file only (no network)")
	clientIP := fs.String("client-ip", "", "SMTP client address (required)")
	helo := fs.String("helo", "", "HELO/EHLO name (required)")
	mailFrom := fs.String("mail-from", "", "MAIL FROM address, <> for the null reverse-path (required)")
	authUser := fs.String("auth-user", "", "SASL login, as for an authenticated submission")
	format := fs.String("format", "text", "output: json, text or message")
	var rcpts stringList
	fs.Var(&rcpts, "rcpt", "RCPT TO address (repeatable)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	seen := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { seen[f.Name] = true })
	for _, req := range []string{"client-ip", "helo", "mail-from"} {
		if !seen[req] {
			return usageError{fmt.Errorf("check: --%s is required", req)}
		}
	}
	ip, err := netip.ParseAddr(*clientIP)
	if err != nil {
		return usageError{fmt.Errorf("check: --client-ip %q is not an IP address", *clientIP)}
	}
	switch *format {
	case "json", "text", "message":
	default:
		return usageError{fmt.Errorf("check: --format %q: want json, text or message", *format)}
	}
	if fs.NArg() > 1 {
		return usageError{errors.New("check: at most one message file")}
	}
	in := io.Reader(os.Stdin)
	name := "standard input"
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, fs.Arg(0)
	}

	cfg := DefaultConfig()
	if *path != "" {
		if cfg, err = LoadConfig(*path); err != nil {
			return err
		}
	}
	r, err := newResolver(cfg, *zone)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	eng, err := newEngine(cfg, r, logger, nil)
	if err != nil {
		return err
	}
	// The header follows MAIL FROM at once here: speculative lookups at
	// MAIL FROM would hide no wait, only add queries. The verdict is the
	// same with or without them.
	eng.SpeculativeQueries = -1
	from := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(*mailFrom), "<"), ">")
	env := engine.Envelope{ClientIP: ip, HELO: *helo, MailFrom: from, Rcpts: rcpts, AuthUser: *authUser}

	br := bufio.NewReaderSize(in, 64<<10)
	fields, err := message.ReadHeader(br, message.Limits{MaxBytes: 64 << 20, MaxFields: 100000})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var body bytes.Buffer
	msg := eng.Begin(context.Background(), env)
	for _, f := range fields {
		msg.Header(f)
	}
	msg.EndOfHeaders()
	err = message.BodyCRLF(br, 64<<10, func(chunk []byte) error {
		msg.Body(chunk)
		if *format == "message" {
			body.Write(chunk)
		}
		return nil
	})
	if err != nil {
		msg.Abort()
		return fmt.Errorf("%s: %w", name, err)
	}
	v := msg.End()

	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(checkReport(v))
	case "message":
		for _, f := range engine.ApplyHeader(fields, v) {
			if _, err := stdout.Write(f.Raw); err != nil {
				return err
			}
		}
		if _, err := io.WriteString(stdout, "\r\n"); err != nil {
			return err
		}
		_, err := stdout.Write(body.Bytes())
		return err
	default:
		return writeText(stdout, v)
	}
}

// report is the JSON form of a verdict.
type report struct {
	IPRev                 *iprevReport  `json:"iprev,omitempty"`
	SPF                   *spfReport    `json:"spf,omitempty"`
	SPFHELO               *spfReport    `json:"spf_helo,omitempty"`
	DKIM                  []dkimReport  `json:"dkim"`
	DMARC                 *dmarcReport  `json:"dmarc,omitempty"`
	ARC                   *arcReport    `json:"arc,omitempty"`
	AuthenticationResults string        `json:"authentication_results"`
	Action                engine.Action `json:"action"`
	Reply                 string        `json:"reply"`
	Override              string        `json:"override,omitempty"`
	OverrideType          string        `json:"override_type,omitempty"`
	Internal              bool          `json:"internal,omitempty"`
	Sealed                bool          `json:"sealed"`
	SealError             string        `json:"seal_error,omitempty"`
	// Signed: the DKIM signatures added (authenticated or internal mail).
	Signed        []dkimsign.Signature `json:"signed"`
	SignError     string               `json:"sign_error,omitempty"`
	ForgedRemoved int                  `json:"forged_authentication_results_removed"`
}

type iprevReport struct {
	Result string `json:"result"`
	IP     string `json:"ip"`
	Name   string `json:"name,omitempty"`
	Reason string `json:"reason,omitempty"`
}

type spfReport struct {
	Result    string `json:"result"`
	Identity  string `json:"identity"`
	Domain    string `json:"domain"`
	Mechanism string `json:"mechanism,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

type dkimReport struct {
	Result     string `json:"result"`
	Domain     string `json:"domain"`
	Selector   string `json:"selector"`
	Identifier string `json:"identifier,omitempty"`
	Algorithm  string `json:"algorithm,omitempty"`
	KeyBits    int    `json:"key_bits,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

type dmarcReport struct {
	Result       string `json:"result"`
	Domain       string `json:"domain"`
	PolicyDomain string `json:"policy_domain,omitempty"`
	Policy       string `json:"policy"`
	Applied      string `json:"applied,omitempty"`
	Disposition  string `json:"disposition"`
	Reason       string `json:"reason,omitempty"`
	// WalksSkipped counts the identifiers not looked up because they
	// could not align (outside the Author Domain's Organizational Domain).
	WalksSkipped int `json:"walks_skipped,omitempty"`
}

type arcReport struct {
	Result     string   `json:"result"`
	Instances  int      `json:"instances"`
	OldestPass int      `json:"oldest_pass,omitempty"`
	Sealers    []string `json:"sealers,omitempty"`
	Reason     string   `json:"reason,omitempty"`
}

func checkReport(v *engine.Verdict) report {
	rep := report{
		DKIM:                  []dkimReport{},
		AuthenticationResults: v.AuthResults,
		Action:                v.Action,
		Reply:                 v.Reply,
		Override:              v.Override.String(),
		OverrideType:          string(v.Override.Type),
		Internal:              v.Internal,
		Sealed:                v.Sealed,
		ForgedRemoved:         len(v.RemoveAR),
	}
	if v.SealErr != nil {
		rep.SealError = v.SealErr.Error()
	}
	rep.Signed = append([]dkimsign.Signature{}, v.Signed...)
	if v.SignErr != nil {
		rep.SignError = v.SignErr.Error()
	}
	spfRep := func(s *spf.Result) *spfReport {
		if s == nil {
			return nil
		}
		r := &spfReport{Result: string(s.Status), Identity: string(s.Identity), Domain: s.Domain, Mechanism: s.Mechanism}
		if s.Err != nil {
			r.Reason = s.Err.Error()
		}
		return r
	}
	rep.SPF, rep.SPFHELO = spfRep(v.SPF), spfRep(v.HELO)
	if r := v.IPRev; r != nil {
		rep.IPRev = &iprevReport{Result: string(r.Status), IP: r.IP.String(), Name: r.Name}
		if r.Err != nil {
			rep.IPRev.Reason = r.Err.Error()
		}
	}
	for _, s := range v.DKIM {
		rep.DKIM = append(rep.DKIM, dkimReport{
			Result: string(s.Status), Domain: s.Domain, Selector: s.Selector, Identifier: s.Identifier,
			Algorithm: s.Algorithm, KeyBits: s.KeyBits, Reason: s.Reason,
		})
	}
	if d := v.DMARC; d != nil {
		disp := "none"
		if d.Disposition != "" {
			disp = string(d.Disposition)
		}
		rep.DMARC = &dmarcReport{
			Result: string(d.Status), Domain: d.AuthorDomain, PolicyDomain: d.PolicyDomain,
			Policy: string(d.Policy), Applied: string(d.Applied), Disposition: disp, Reason: d.Reason,
			WalksSkipped: d.SkippedWalks,
		}
	}
	if a := v.ARC; a != nil {
		r := &arcReport{Result: string(a.Status), Instances: a.Instances, OldestPass: a.OldestPass, Reason: a.Reason}
		for _, s := range a.Sets {
			r.Sealers = append(r.Sealers, fmt.Sprintf("i=%d %s", s.Instance, s.Domain))
		}
		rep.ARC = r
	}
	return rep
}

func writeText(w io.Writer, v *engine.Verdict) error {
	rep := checkReport(v)
	var b strings.Builder
	line := func(k, format string, args ...any) {
		fmt.Fprintf(&b, "%-8s %s\n", k+":", fmt.Sprintf(format, args...))
	}
	if rep.Internal {
		line("judged", "no: internal network or authenticated submission")
	}
	if r := rep.IPRev; r != nil {
		line("iprev", "%s (%s%s%s)", r.Result, r.IP, suffix(" ", r.Name), suffix(", ", r.Reason))
	}
	for _, s := range []*spfReport{rep.SPF, rep.SPFHELO} {
		if s != nil {
			line("spf", "%s (%s %s%s)", s.Result, s.Identity, s.Domain, suffix(", ", s.Reason))
		}
	}
	for _, d := range rep.DKIM {
		line("dkim", "%s (d=%s s=%s a=%s%s)", d.Result, d.Domain, d.Selector, d.Algorithm, suffix(", ", d.Reason))
	}
	if d := rep.DMARC; d != nil {
		line("dmarc", "%s (from %s, policy %s, disposition %s%s)", d.Result, d.Domain, orNone(d.Policy), d.Disposition, suffix(", ", d.Reason))
	}
	if a := rep.ARC; a != nil {
		line("arc", "%s (%d sets%s)", a.Result, a.Instances, suffix(", ", a.Reason))
	}
	if rep.Override != "" {
		line("override", "%s", rep.Override)
	}
	for _, sg := range rep.Signed {
		line("signed", "d=%s s=%s a=%s", sg.Domain, sg.Selector, sg.Algorithm)
	}
	if v.SignSkipped != "" {
		line("signed", "no: %s", v.SignSkipped)
	}
	if rep.SignError != "" {
		line("signed", "error: %s", rep.SignError)
	}
	line("action", "%s%s", rep.Action, suffix(" ", rep.Reply))
	if rep.AuthenticationResults != "" {
		fmt.Fprintf(&b, "\nAuthentication-Results: %s\n", strings.ReplaceAll(rep.AuthenticationResults, "\r\n", "\n"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func suffix(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
