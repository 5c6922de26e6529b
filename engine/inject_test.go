package engine

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/authmilter/authmilter/arc"
	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/verify/authres"
)

// hostileText is what an envelope, a header or a DNS record may carry to
// try to end a header field, start another, or change its structure.
var hostileText = []string{
	"a\r\nX-Injected: yes",
	"a\nX-Injected: yes",
	"a\rb",
	"x; dkim=pass header.d=bank.example",
	"x (comment) y",
	"x) dmarc=pass (",
	"\"quoted\"", "\\", "((((", ";",
	"a\x00b", "\x1b[31mred", "\x7f",
	"naïve@exämple.com", "\u202eevil", "\xff\xfe",
	"a b\tc",
	strings.Repeat("A", 2000),
}

// TestInjection drives the Engine with hostile envelopes, headers and DNS
// records and checks everything we write: each inserted field's Raw is
// "Name: value CRLF" folded only with CRLF+WSP, our A-R parses back with
// our authserv-id, a reject or tempfail reply is one line of printable
// ASCII, the quarantine reason is printable, and the message's log line is
// one line in both slog handlers.
func TestInjection(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for name, recs := range map[string][]string{
		"hostile.example":                {"v=spf1 -all exp=exp.hostile.example"},
		"exp.hostile.example":            {"bad\r\nX-Injected: yes %{s} %{h} %{l}\x00\x1b (\"; dkim=pass"},
		"_dmarc.hostile.example":         {"v=DMARC1; p=reject; rua=mailto:a@b\r\nX: y; \x00"},
		"sel._domainkey.hostile.example": {"v=DKIM1; k=rsa; p=\x00\r\n;;junk\"(", "v=DKIM1; p=MIIB\r\nX: y"},
		"_dmarc.junk.example":            {"v=DMARC1; p=reject\r\n; sp=\"none\x00"},
		"junk.example":                   {"v=spf1 include:\r\n.example -all", "v=spf1 -all"},
	} {
		w.dns.TXT[name] = recs
	}
	e := w.engine(func(e *Engine) {
		e.ReceivedSPF = true
		e.Sealer = &arc.Sealer{Domain: "forwarder.test", Selector: "seal", Key: w.sealKey}
	})

	type input struct {
		env  Envelope
		from string // From header value
		sig  string // DKIM-Signature value, if any
	}
	var inputs []input
	for _, h := range hostileText {
		env := Envelope{
			ClientIP: netip.MustParseAddr("198.51.100.7"), ClientName: h, HELO: h,
			MailFrom: h + "@hostile.example", Rcpts: []string{h}, QueueID: h,
		}
		inputs = append(inputs,
			input{env, " " + sanitizeHeaderText(h) + " <a@hostile.example>", ""},
			input{Envelope{ClientIP: env.ClientIP, HELO: "h" + h, MailFrom: "x@" + h}, " a@" + sanitizeHeaderText(h), ""},
			input{Envelope{ClientIP: env.ClientIP, HELO: "hostile.example", MailFrom: "b@junk.example"}, " b@junk.example",
				" v=1; a=rsa-sha256; d=" + sanitizeHeaderText(h) + "; s=sel" + sanitizeHeaderText(h) + "; i=\"" + sanitizeHeaderText(h) +
					"\"@hostile.example; h=from; bh=AA==; b=AA" + sanitizeHeaderText(h)},
			input{Envelope{ClientIP: env.ClientIP, HELO: "hostile.example", MailFrom: "c@hostile.example"}, " c@hostile.example",
				" v=1; a=rsa-sha256; d=hostile.example; s=sel; h=from; bh=AA==; b=AA=="},
		)
	}
	// Reject and tempfail replies for ordinary domains too.
	inputs = append(inputs,
		input{Envelope{ClientIP: netip.MustParseAddr("198.51.100.7"), MailFrom: "x@relaxed.example"}, " a@example.com", ""},
		input{Envelope{ClientIP: netip.MustParseAddr("198.51.100.7"), MailFrom: "x@tempfail.example"}, " a@tempfail.example", ""},
		input{Envelope{ClientIP: netip.MustParseAddr("198.51.100.7"), MailFrom: "x@quarantined.example"}, " a@quarantined.example", ""},
	)

	actions := map[Action]int{}
	for i, in := range inputs {
		msg := "From:" + in.from + "\r\nTo: bob@mx.test\r\nSubject: hi\r\n"
		if in.sig != "" {
			msg = "DKIM-Signature:" + in.sig + "\r\n" + msg
		}
		msg += "\r\nbody\r\n"
		for _, json := range []bool{false, true} {
			var logs bytes.Buffer
			var rc recordChecker
			h := slog.Handler(slog.NewTextHandler(&logs, nil))
			if json {
				h = slog.NewJSONHandler(&logs, nil)
			}
			le := *e
			le.Logger = slog.New(h)
			v := runFields(t, &le, in.env, msg)
			actions[v.Action]++
			checkVerdictText(t, v)
			// One record per Write; each must be one line.
			for _, rec := range strings.SplitAfter(logs.String(), "\n") {
				rc.Write([]byte(rec))
			}
			if err := rc.err(); err != nil {
				t.Errorf("input %d (json %v): %v", i, json, err)
			}
			if n := strings.Count(logs.String(), "\n"); n != 1 {
				t.Errorf("input %d (json %v): %d log lines for one message:\n%s", i, json, n, logs.String())
			}
		}
	}
	for _, a := range []Action{ActionAccept, ActionReject, ActionTempfail, ActionQuarantine} {
		if actions[a] == 0 {
			t.Errorf("no input ended in %s (%v): the test does not cover its text", a, actions)
		}
	}
}

// sanitizeHeaderText keeps a hostile string usable inside a raw header
// field: line breaks become folding (the header itself is the MTA's).
func sanitizeHeaderText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n ")
}

// runFields is run without the body check: the envelope may hold anything.
func runFields(t *testing.T, e *Engine, env Envelope, msg string) *Verdict {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(msg))
	fields, err := message.ReadHeader(br, message.Limits{})
	if err != nil {
		t.Fatalf("%q: %v", msg, err)
	}
	m := e.Begin(context.Background(), env)
	for _, f := range fields {
		m.Header(f)
	}
	m.EndOfHeaders()
	m.Body([]byte("body\r\n"))
	return m.End()
}

// checkVerdictText checks every text of a verdict that reaches the MTA.
func checkVerdictText(t *testing.T, v *Verdict) {
	t.Helper()
	for _, f := range v.Insert {
		raw := string(f.Raw)
		if !strings.HasPrefix(raw, f.Name+": ") || !strings.HasSuffix(raw, "\r\n") {
			t.Errorf("field %q is not \"Name: value CRLF\"", raw)
			continue
		}
		val := strings.TrimSuffix(strings.TrimPrefix(raw, f.Name+":"), "\r\n")
		for i := 0; i < len(val); i++ {
			c := val[i]
			switch {
			case c == '\r':
				if i+2 >= len(val) || val[i+1] != '\n' || (val[i+2] != ' ' && val[i+2] != '\t') {
					t.Errorf("%s: CR not part of CRLF+WSP folding: %q", f.Name, raw)
				}
			case c == '\n':
				if i == 0 || val[i-1] != '\r' {
					t.Errorf("%s: bare LF: %q", f.Name, raw)
				}
			case c == '\t':
			case c < 0x20 || c == 0x7f:
				t.Errorf("%s: control byte %#x: %q", f.Name, c, raw)
			}
		}
		// The MTA gets the value through go-milter (CRLF → LF).
		if err := checkMilterHeader(f.Name, strings.ReplaceAll(f.Value(), "\r\n", "\n"), false); err != nil {
			t.Error(err)
		}
		if f.Name == authres.FieldName && f.Value() != " "+v.AuthResults {
			t.Errorf("A-R field %q, AuthResults %q", f.Value(), v.AuthResults)
		}
	}
	if v.Action == ActionReject || v.Action == ActionTempfail {
		if err := checkReplyLine(v.Reply, true); err != nil {
			t.Errorf("%s reply: %v", v.Action, err)
		}
	}
	if err := checkReplyLine(v.QuarantineReason, false); err != nil {
		t.Errorf("quarantine reason: %v", err)
	}
}

// TestForgedAuthResultsRemoved: every form of an Authentication-Results
// field that claims our authserv-id is removed (RFC 8601 §5), those of other
// ADMDs stay.
func TestForgedAuthResultsRemoved(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	e := w.engine()
	other := "Authentication-Results: other.example; spf=pass smtp.mailfrom=example.com\r\n"
	otherFolded := "Authentication-Results: (ours?) mx.test.other;\r\n\tdkim=pass\r\n"
	for name, forged := range map[string]string{
		"plain":              "Authentication-Results: mx.test; spf=pass\r\n",
		"lower case name":    "authentication-results: mx.test; dmarc=pass\r\n",
		"upper case name":    "AUTHENTICATION-RESULTS: mx.test; dmarc=pass\r\n",
		"upper case id":      "Authentication-Results: MX.TEST; dmarc=pass\r\n",
		"comment first":      "Authentication-Results: (trust me) mx.test; dkim=pass\r\n",
		"nested comments":    "Authentication-Results: ((a)(b\\)c)) mx.test (x); dkim=pass\r\n",
		"folded":             "Authentication-Results:\r\n\tmx.test;\r\n\tdmarc=pass\r\n",
		"folded in id":       "Authentication-Results: \r\n mx.test\r\n ; spf=pass\r\n",
		"quoted id":          "Authentication-Results: \"mx.test\"; spf=pass\r\n",
		"trailing dot":       "Authentication-Results: mx.test.; spf=pass\r\n",
		"version 1":          "Authentication-Results: mx.test 1; spf=pass\r\n",
		"version comment":    "Authentication-Results: mx.test (c) 1 (d); spf=pass\r\n",
		"no space":           "Authentication-Results:mx.test;spf=pass\r\n",
		"none":               "Authentication-Results: mx.test; none\r\n",
		"bad syntax":         "Authentication-Results: mx.test; dkim=\r\n",
		"several":            "Authentication-Results: mx.test; spf=pass\r\n" + other + "Authentication-Results: mx.test; dkim=pass\r\n",
		"space before colon": "Authentication-Results : mx.test; spf=pass\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			msg := other + forged + otherFolded + msgText("example.com", "", "Hi.\r\n")
			v, fields, _ := run(t, e, env("192.0.2.10", "helo.example.com", "alice@example.com"), msg)
			out := ApplyHeader(fields, v)
			var ours, others int
			for _, f := range out {
				if !strings.EqualFold(strings.TrimSpace(f.Name), authres.FieldName) {
					continue
				}
				val := string(f.Raw[strings.IndexByte(string(f.Raw), ':')+1:])
				id, err := authres.AuthServID(val)
				switch {
				case err == nil && authres.SameAuthServID(id, "mx.test"):
					ours++
				case err == nil && (id == "other.example" || id == "mx.test.other"):
					others++
				default:
					t.Errorf("unexpected A-R left: %q (%q, %v)", f.Raw, id, err)
				}
			}
			wantOthers := 2
			if name == "several" {
				wantOthers = 3
			}
			if ours != 1 || others != wantOthers {
				t.Errorf("after the verdict: %d A-R claim mx.test (want only ours), %d of others (want %d); RemoveAR %v", ours, others, wantOthers, v.RemoveAR)
			}
		})
	}
}

// TestRejectReplyHostileDomain: the reject reply names the DMARC domain and
// reason, which come from the message, on one printable line.
func TestRejectReplyHostileDomain(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.dns.TXT["xn--caf-dma.example"] = []string{"v=spf1 -all"}
	w.dns.TXT["_dmarc.xn--caf-dma.example"] = []string{"v=DMARC1; p=reject"}
	e := w.engine(func(e *Engine) { e.Timeout = 2 * time.Second })
	for _, from := range []string{"a@café.example", "a@xn--caf-dma.example", "\"a\r\n b\"@example.com", "a@example.com (x\r\n y)"} {
		v, _, _ := run(t, e, env("198.51.100.7", "h.example", "x@relaxed.example"), "From: "+from+"\r\nSubject: x\r\n\r\nbody\r\n")
		checkVerdictText(t, v)
	}
}

// TestObsoleteSpaceBeforeColon: RFC 5322 §4.5.3 (obs-optional) lets WSP
// come between a field name and its colon, and receivers must accept it.
// Such a From must still be judged by DMARC, and such an
// Authentication-Results claiming our id must still be removed, whether
// the field comes from a message file or from the MTA (which may pass the
// name with its trailing WSP).
func TestObsoleteSpaceBeforeColon(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	e := w.engine()
	msg := "From : Alice <alice@example.com>\r\nAuthentication-Results\t: mx.test; dmarc=pass\r\nSubject: x\r\n\r\nHi.\r\n"
	v, _, _ := run(t, e, env("198.51.100.7", "h.example", "x@relaxed.example"), msg)
	if v.Action != ActionReject || v.DMARC == nil || v.DMARC.AuthorDomain != "example.com" {
		t.Errorf("From with a space before the colon: action %s, DMARC %+v; want reject for example.com", v.Action, v.DMARC)
	}
	if len(v.RemoveAR) != 1 {
		t.Errorf("forged A-R with a space before the colon: RemoveAR %v", v.RemoveAR)
	}

	m := e.Begin(context.Background(), env("198.51.100.7", "h.example", "x@relaxed.example"))
	m.Header(message.FromMilter("From ", " Alice <alice@example.com>", true))
	m.Header(message.FromMilter("Authentication-Results\t", " mx.test; dmarc=pass", true))
	m.EndOfHeaders()
	m.Body([]byte("Hi.\r\n"))
	v = m.End()
	if v.Action != ActionReject || len(v.RemoveAR) != 1 {
		t.Errorf("from the MTA, names with trailing WSP: action %s, RemoveAR %v; want reject, [1]", v.Action, v.RemoveAR)
	}
}
