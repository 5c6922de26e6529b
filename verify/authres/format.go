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
	var stack [512]byte
	var ends [32]int
	w := words{b: stack[:0], ends: ends[:0]}
	var firsts [8]int
	starts := firsts[:0] // the first word of each resinfo written
	for _, r := range results {
		k := len(w.ends)
		if w.resinfo(r) {
			starts = append(starts, k)
		}
	}
	var id [64]byte
	f := folder{col: len(FieldName) + 2}
	// The words, a fold and "; " per resinfo, a space per word.
	f.b.Grow(len(authservID) + 2 + len(w.b) + 4*len(starts) + len(w.ends) + len(" none"))
	f.rawBytes(appendValue(id[:0], authservID))
	for n, k := range starts {
		end := len(w.ends)
		if n+1 < len(starts) {
			end = starts[n+1]
		}
		f.raw(";")
		f.fold()
		f.rawBytes(w.at(k))
		for i := k + 1; i < end; i++ {
			f.wordBytes(w.at(i))
		}
	}
	if len(starts) == 0 {
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
	var w words
	var out []byte
	for _, r := range results {
		k := len(w.ends)
		if !w.resinfo(r) {
			continue
		}
		if len(out) > 0 {
			out = append(out, "; "...)
		}
		for i := k; i < len(w.ends); i++ {
			if i > k {
				out = append(out, ' ')
			}
			out = append(out, w.at(i)...)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return string(out)
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

// words holds words in one buffer: word i is b[ends[i-1]:ends[i]].
type words struct {
	b    []byte
	ends []int
}

// mark ends the word being written.
func (w *words) mark() { w.ends = append(w.ends, len(w.b)) }

// at returns word i.
func (w *words) at(i int) []byte {
	start := 0
	if i > 0 {
		start = w.ends[i-1]
	}
	return w.b[start:w.ends[i]]
}

// resinfo adds the words of one resinfo: "method=result", the comment's
// words, "reason=...", then the properties (RFC 8601 §2.2: methodspec
// [CFWS reasonspec] [CFWS 1*propspec]; a comment is CFWS and may stand
// anywhere). It adds nothing and reports false when the method or the
// result is not a Keyword.
func (w *words) resinfo(r Result) bool {
	method := strings.ToLower(r.Method)
	res := strings.ToLower(string(r.Value))
	if res == "" {
		res = string(verify.StatusNone)
	}
	if !isKeyword(method) || !isKeyword(res) {
		return false
	}
	w.b = append(append(append(w.b, method...), '='), res...)
	w.mark()
	w.comment(r.Comment)
	if reason := cleanText(r.Reason); reason != "" {
		w.b = appendValue(append(w.b, "reason="...), reason)
		w.mark()
	}
	for _, p := range r.Props {
		t, n := strings.ToLower(p.Type), strings.ToLower(p.Name)
		if !isKeyword(t) || !isKeyword(n) {
			continue
		}
		w.b = append(append(append(append(w.b, t...), '.'), n...), '=')
		w.b = appendPValue(w.b, p.Value)
		w.mark()
	}
	w.comment(r.PropsComment)
	return true
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

func (f *folder) rawBytes(s []byte) {
	f.b.Write(s)
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
	f.space(len(w))
	f.raw(w)
}

// wordBytes is word for a word in a byte buffer.
func (f *folder) wordBytes(w []byte) {
	f.space(len(w))
	f.rawBytes(w)
}

// space writes the space before a word of n columns, or folds when the
// word would pass the limit.
func (f *folder) space(n int) {
	limit := f.limit
	if limit == 0 {
		limit = lineLimit
	}
	if f.col+1+n > limit {
		f.fold()
	} else {
		f.raw(" ")
	}
}
