package dnscache

import (
	"bytes"
	"fmt"
	"strings"
)

// scanDirectives reads the control entries of a master file (RFC 1035 §5.1)
// that dns.ZoneParser applies without reporting: it returns the absolute
// names set by $ORIGIN, in order, resolved against the origin in force
// (initially origin), and refuses $INCLUDE and $GENERATE, naming the file
// and line. An entry is a directive when it starts a line outside
// parentheses and quotes; comments are skipped.
func scanDirectives(text []byte, origin, filename string) ([]string, error) {
	var origins []string
	current := origin
	if current != "" && !strings.HasSuffix(current, ".") {
		current += "."
	}
	line, depth, quoted := 1, 0, false
	for i := 0; i < len(text); i++ {
		if depth == 0 && !quoted && (i == 0 || text[i-1] == '\n') && text[i] == '$' {
			word, arg := directive(text[i:])
			switch strings.ToUpper(word) {
			case "$ORIGIN":
				current = absoluteName(arg, current)
				origins = append(origins, current)
			case "$INCLUDE", "$GENERATE":
				return nil, fmt.Errorf("dnscache: zone %s:%d: %s is not supported", filename, line, word)
			}
		}
		switch c := text[i]; {
		case c == '\\':
			if i+1 < len(text) && text[i+1] != '\n' {
				i++
			}
		case c == '\n':
			line++
			if depth == 0 {
				quoted = false
			}
		case quoted:
			if c == '"' {
				quoted = false
			}
		case c == '"':
			quoted = true
		case c == ';':
			for i+1 < len(text) && text[i+1] != '\n' {
				i++
			}
		case c == '(':
			depth++
		case c == ')':
			depth = max(depth-1, 0)
		}
	}
	return origins, nil
}

// directive splits the entry at the start of s into its first two words.
func directive(s []byte) (word, arg string) {
	if end := bytes.IndexByte(s, '\n'); end >= 0 {
		s = s[:end]
	}
	if semi := bytes.IndexByte(s, ';'); semi >= 0 {
		s = s[:semi]
	}
	f := strings.Fields(string(s))
	if len(f) == 0 {
		return "", ""
	}
	if len(f) == 1 {
		return f[0], ""
	}
	return f[0], f[1]
}

// absoluteName resolves a name from a master file against origin, as the
// parser does: "@" is the origin, a name ending in a dot is absolute, any
// other is relative to the origin.
func absoluteName(name, origin string) string {
	switch {
	case name == "@":
		return origin
	case strings.HasSuffix(name, ".") && !strings.HasSuffix(name, `\.`):
		return name
	case origin == ".":
		return name + "."
	}
	return name + "." + origin
}
