package authres

import (
	"strings"

	"github.com/authmilter/authmilter/verify"
	"github.com/authmilter/authmilter/verify/spf"
)

// ReceivedSPFName is the name of the Received-SPF header field.
const ReceivedSPFName = "Received-SPF"

// ReceivedSPF returns the value of a Received-SPF header field for r (RFC
// 7208 §9.1), without the field name and final CRLF, folded with CRLF+TAB
// to 78 columns like Format:
//
//	fail (mx.example.org: domain of bob@example.com does not
//		designate 198.51.100.9 as permitted sender) client-ip=198.51.100.9;
//		envelope-from="bob@example.com"; helo=host.example.net;
//		receiver=mx.example.org; identity=mailfrom; mechanism=-all
//
// receiver is the name of the host that did the check; it prefixes the
// comment and becomes receiver= when not empty. problem= carries the error
// of none, temperror and permerror; mechanism= the term that decided
// ("default" when none matched, §9.1). Values are dot-atoms or
// quoted-strings (§9.1 key-value-pair), sanitised like every value of this
// package. A result outside the seven of §2.6 is written as none.
func ReceivedSPF(r spf.Result, receiver string) string {
	res := orNone(r.Result)
	switch res {
	case verify.ResultPass, verify.ResultFail, verify.ResultSoftfail, verify.ResultNeutral,
		verify.ResultNone, verify.ResultTemperror, verify.ResultPermerror:
	default:
		res = verify.ResultNone
	}
	f := folder{col: len(ReceivedSPFName) + 2}
	f.raw(string(res))

	sentence := spfSentence(r)
	if c := cleanText(receiver); c != "" {
		sentence = c + ": " + sentence
	}
	var ws words
	ws.comment(sentence)
	for i := range ws.ends {
		f.wordBytes(ws.at(i))
	}

	// RFC 7208 §9.1: key-value-list, in the order of the "key" rule.
	var kv []string
	add := func(key, v string) {
		kv = append(kv, key+"="+dotAtomValue(v))
	}
	if r.IP.IsValid() {
		add("client-ip", r.IP.String())
	}
	if r.Sender != "" {
		add("envelope-from", r.Sender)
	}
	if r.HELO != "" {
		add("helo", r.HELO)
	}
	if r.Err != nil {
		add("problem", r.Err.Error())
	}
	if receiver != "" {
		add("receiver", receiver)
	}
	if r.Identity != "" {
		add("identity", string(r.Identity))
	}
	if r.Mechanism != "" {
		add("mechanism", r.Mechanism)
	}
	for i, w := range kv {
		if i < len(kv)-1 {
			w += ";"
		}
		f.word(w)
	}
	return f.b.String()
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
