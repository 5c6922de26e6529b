package authres

import (
	"bufio"
	"fmt"
	"strings"
)

// checkFieldText reports the first way s could break a header field: a CR
// or LF that is not part of CRLF followed by a space or TAB (folding), a
// fold that leaves a line of white space only, any other control character,
// or a line over maxLine octets (998 in RFC 5322 §2.1.1).
func checkFieldText(s string, maxLine int) error {
	lineStart := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\r':
			if i+2 >= len(s) || s[i+1] != '\n' || (s[i+2] != ' ' && s[i+2] != '\t') {
				return fmt.Errorf("offset %d: CR not part of CRLF+WSP folding in %q", i, s)
			}
			if strings.TrimLeft(s[lineStart:i], " \t") == "" {
				return fmt.Errorf("offset %d: line of white space only in %q", i, s)
			}
			if i-lineStart > maxLine {
				return fmt.Errorf("offset %d: line of %d octets", i, i-lineStart)
			}
			i += 2
			lineStart = i
		case c == '\n':
			return fmt.Errorf("offset %d: bare LF in %q", i, s)
		case c == '\t':
			if i == 0 || s[i-1] != '\n' {
				return fmt.Errorf("offset %d: TAB outside folding in %q", i, s)
			}
		case c < ' ' || c == 0x7f:
			return fmt.Errorf("offset %d: control character %#x in %q", i, c, s)
		}
	}
	if len(s)-lineStart > maxLine {
		return fmt.Errorf("last line of %d octets", len(s)-lineStart)
	}
	return nil
}

// lines splits a folded value into its lines.
func lines(s string) []string { return strings.Split(s, "\r\n") }

func newReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
