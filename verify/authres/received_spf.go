package authres

import (
	"strings"

	"github.com/authmilter/authmilter/verify"
)

// ReceivedSPFName is the name of the Received-SPF header field.
const ReceivedSPFName = "Received-SPF"

// ReceivedSPF is what a Received-SPF header field says (RFC 7208 §9.1).
// Empty fields are left out of the field.
type ReceivedSPF struct {
	// Status is one of the seven results of RFC 7208 §2.6; any other
	// (the zero value too) is written as none.
	Status verify.Status
	// Comment says what the result means ("domain of a@example.com
	// designates 192.0.2.1 as permitted sender").
	Comment string
	// Receiver is the host that did the check: it prefixes the comment
	// and is written as receiver=.
	Receiver string
	// The key-value pairs of §9.1: client-ip=, envelope-from=, helo=,
	// problem= (the error of none, temperror and permerror), identity=
	// and mechanism= (the term that decided; "default" when none
	// matched).
	ClientIP     string
	EnvelopeFrom string
	HELO         string
	Problem      string
	Identity     string
	Mechanism    string
}

// FormatReceivedSPF returns the value of a Received-SPF header field for
// f, without the field name and final CRLF, folded with CRLF+TAB to 78
// columns like Format:
//
//	fail (mx.example.org: domain of bob@example.com does not
//		designate 198.51.100.9 as permitted sender) client-ip=198.51.100.9;
//		envelope-from="bob@example.com"; helo=host.example.net;
//		receiver=mx.example.org; identity=mailfrom; mechanism=-all
//
// Values are dot-atoms or quoted-strings (§9.1 key-value-pair), sanitised
// like every value of this package.
func FormatReceivedSPF(f ReceivedSPF) string {
	res := f.Status
	switch res {
	case verify.StatusPass, verify.StatusFail, verify.StatusSoftfail, verify.StatusNeutral,
		verify.StatusNone, verify.StatusTemperror, verify.StatusPermerror:
	default:
		res = verify.StatusNone
	}
	out := folder{col: len(ReceivedSPFName) + 2}
	out.raw(string(res))

	sentence := f.Comment
	if c := cleanText(f.Receiver); c != "" && sentence != "" {
		sentence = c + ": " + sentence
	}
	var ws words
	ws.comment(sentence)
	for i := range ws.ends {
		out.wordBytes(ws.at(i))
	}

	// RFC 7208 §9.1: key-value-list, in the order of the "key" rule.
	var kv []string
	add := func(key, v string) {
		if v != "" {
			kv = append(kv, key+"="+dotAtomValue(v))
		}
	}
	add("client-ip", f.ClientIP)
	add("envelope-from", f.EnvelopeFrom)
	add("helo", f.HELO)
	add("problem", f.Problem)
	add("receiver", f.Receiver)
	add("identity", f.Identity)
	add("mechanism", f.Mechanism)
	for i, w := range kv {
		if i < len(kv)-1 {
			w += ";"
		}
		out.word(w)
	}
	return out.b.String()
}

// dotAtomValue formats s as dot-atom / quoted-string (RFC 7208 §9.1). A
// value with '=', which atext allows, is quoted all the same, so that
// readers that split at the first '=' cannot be misled.
func dotAtomValue(s string) string {
	s = keptValue(s)
	if isDotAtomText(s) && !strings.Contains(s, "=") {
		return s
	}
	return quote(s)
}
