package benchmail

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
)

// words is the vocabulary of the generated prose: business mail, the bulk
// of what an inbound MX sees.
var words = strings.Fields(`the a of to and in for on with by from at as is are was be this that
these our your their we you they it order invoice payment account update meeting report project
team customer service delivery shipment quarter budget review schedule please thanks regards
attached below following request confirm details information available week month today
tomorrow release version notes security policy access password reset subscription newsletter
offer discount product price support ticket issue resolved pending approval contract signed
document draft final summary agenda minutes call conference office travel expense receipt
balance statement transfer bank card online portal login settings profile notification
reminder deadline priority status progress milestone launch campaign marketing sales lead
opportunity partner vendor supplier inventory warehouse logistics tracking number reference`)

// prose returns n bytes (about) of paragraphs wrapped at 72 columns, CRLF
// line ends.
func prose(r *rand.Rand, n int) string {
	var b strings.Builder
	b.Grow(n + 80)
	line := 0
	sentence := 0
	for b.Len() < n {
		w := words[r.IntN(len(words))]
		if sentence == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		sentence++
		if sentence > 6+r.IntN(10) {
			w += "."
			sentence = 0
		}
		if line > 0 && line+1+len(w) > 72 {
			b.WriteString("\r\n")
			line = 0
			if r.IntN(8) == 0 {
				b.WriteString("\r\n")
			}
		}
		if line > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	b.WriteString("\r\n")
	return b.String()
}

// html wraps text as a simple HTML document, paragraph per blank line.
func html(text string) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"></head>\r\n<body style=\"font-family: Arial, sans-serif; font-size: 14px\">\r\n<p>")
	for _, l := range strings.Split(strings.TrimRight(text, "\r\n"), "\r\n") {
		if l == "" {
			b.WriteString("</p>\r\n<p>")
			continue
		}
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	b.WriteString("</p>\r\n</body></html>\r\n")
	return b.String()
}

// attachment returns n bytes of base64 (76-column lines, RFC 2045 §6.8) of
// random content, as a PDF attachment looks to a milter.
func attachment(r *rand.Rand, n int) string {
	raw := make([]byte, n*3/4)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	var b strings.Builder
	b.Grow(len(enc) + len(enc)/76*2 + 2)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteString("\r\n")
	return b.String()
}
