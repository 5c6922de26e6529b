package authres

import (
	"strings"

	"github.com/authmilter/authmilter/internal/message"
	"github.com/authmilter/authmilter/verify"
)

// FieldName is the name of the header field (RFC 8601 §2.2).
const FieldName = "Authentication-Results"

// lineLimit is the line length RFC 5322 §2.1.1 recommends, in columns.
const lineLimit = 78

// Format returns the value of an Authentication-Results field (without the
// field name and colon, and without a final CRLF) reporting results under
// authservID. Every resinfo starts on a new line, folded with CRLF+TAB, and
// longer resinfos are folded between words so that lines stay within 78
// columns, counting the "Authentication-Results: " that precedes the value
// on the first line. An empty results gives "authserv-id; none" (RFC 8601
// §2.2 no-result). See the package documentation for how values are
// sanitised.
func Format(authservID string, results []Result) string {
	f := folder{col: len(FieldName) + 2}
	f.b.Grow(64 * (len(results) + 1))
	f.raw(value(authservID))
	n := 0
	var scratch [16]string
	for _, r := range results {
		words := resinfoWords(scratch[:0], r)
		if words == nil {
			continue
		}
		n++
		f.raw(";")
		f.fold()
		f.raw(words[0])
		for _, w := range words[1:] {
			f.word(w)
		}
	}
	if n == 0 {
		f.raw(";")
		f.word("none")
	}
	return f.b.String()
}

// FormatResults returns the resinfo list alone, unfolded, resinfos
// separated by "; ", as the payload of an ARC-Authentication-Results field
// after its authserv-id (RFC 8617 §4.1.1): "spf=pass smtp.mailfrom=...;
// dkim=...". An empty list gives "none" (RFC 8601 §2.2 no-result).
func FormatResults(results []Result) string {
	var parts []string
	for _, r := range results {
		if words := resinfoWords(nil, r); words != nil {
			parts = append(parts, strings.Join(words, " "))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// Field returns a complete Authentication-Results header field,
// "Authentication-Results: <Format(authservID, results)>\r\n".
func Field(authservID string, results []Result) message.Field {
	return FieldOf(Format(authservID, results))
}

// FieldOf returns the Authentication-Results header field whose value is
// formatted, a value returned by Format.
func FieldOf(formatted string) message.Field {
	raw := make([]byte, 0, len(FieldName)+2+len(formatted)+2)
	raw = append(append(append(append(raw, FieldName...), ": "...), formatted...), "\r\n"...)
	return message.Field{Name: FieldName, Raw: raw}
}

// resinfoWords appends to words the words of one resinfo: "method=result", the
// comment's words, "reason=...", then the properties (RFC 8601 §2.2:
// methodspec [CFWS reasonspec] [CFWS 1*propspec]; a comment is CFWS and
// may stand anywhere). It returns nil when the method or the result is not
// a Keyword.
func resinfoWords(words []string, r Result) []string {
	method := strings.ToLower(r.Method)
	res := strings.ToLower(string(r.Value))
	if res == "" {
		res = string(verify.ResultNone)
	}
	if !isKeyword(method) || !isKeyword(res) {
		return nil
	}
	words = append(words, method+"="+res)
	words = commentWords(words, r.Comment)
	if reason := cleanText(r.Reason); reason != "" {
		words = append(words, "reason="+value(reason))
	}
	for _, p := range r.Props {
		t, n := strings.ToLower(p.Type), strings.ToLower(p.Name)
		if !isKeyword(t) || !isKeyword(n) {
			continue
		}
		words = append(words, t+"."+n+"="+pvalue(p.Value))
	}
	return words
}

// folder lays out words on lines of at most lineLimit columns.
type folder struct {
	b     strings.Builder
	col   int
	limit int // 0: lineLimit
}

func (f *folder) raw(s string) {
	f.b.WriteString(s)
	f.col += len(s)
}

// fold starts a continuation line: CRLF then a TAB (RFC 5322 §2.2.3),
// counted as 8 columns.
func (f *folder) fold() {
	f.b.WriteString("\r\n\t")
	f.col = 8
}

// word writes a space and w, or folds first when w would pass the limit.
func (f *folder) word(w string) {
	limit := f.limit
	if limit == 0 {
		limit = lineLimit
	}
	if f.col+1+len(w) > limit {
		f.fold()
	} else {
		f.raw(" ")
	}
	f.raw(w)
}
