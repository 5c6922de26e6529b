package dmarc

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file turns U-labels into A-labels (RFC 5890 §2.3.2.1), as RFC 9989
// §5.3.1 requires of the Author Domain. golang.org/x/net/idna would do it
// with full UTS #46 mapping and NFC, but it pulls in golang.org/x/text, which
// the module does not require; until it does, labels are lower-cased rune by
// rune, checked to be letters, marks, digits or hyphens, and Punycode-encoded
// here (RFC 3492). Input that is not already in NFC gives an A-label that
// matches nothing, so the domain is simply not found.

var errIDN = errors.New("invalid internationalised label")

// toALabel returns the A-label of a non-ASCII label.
func toALabel(label string) (string, error) {
	if !utf8.ValidString(label) {
		return "", errIDN
	}
	runes := make([]rune, 0, len(label))
	for _, r := range label {
		r = unicode.ToLower(r)
		switch {
		case r == '-', r < 0x80 && (isLDHByte(byte(r)) || r == '_'):
		case unicode.IsLetter(r), unicode.IsMark(r), unicode.IsDigit(r):
		default:
			return "", errIDN
		}
		runes = append(runes, r)
	}
	enc, ok := punycodeEncode(runes)
	if !ok {
		return "", errIDN
	}
	return "xn--" + enc, nil
}

func isLDHByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

// Punycode parameters, RFC 3492 §5.
const (
	pcBase        = 36
	pcTMin        = 1
	pcTMax        = 26
	pcSkew        = 38
	pcDamp        = 700
	pcInitialBias = 72
	pcInitialN    = 128
)

// punycodeEncode is the encoding procedure of RFC 3492 §6.3.
func punycodeEncode(input []rune) (string, bool) {
	var out strings.Builder
	for _, r := range input {
		if r < 0x80 {
			out.WriteRune(r)
		}
	}
	b := out.Len()
	h := b
	if b > 0 {
		out.WriteByte('-')
	}
	n, delta, bias := rune(pcInitialN), 0, pcInitialBias
	for h < len(input) {
		m := rune(unicode.MaxRune + 1)
		for _, r := range input {
			if r >= n && r < m {
				m = r
			}
		}
		// Overflow guard: labels are at most 63 octets, so these stay small;
		// refuse anything that would not.
		if int(m-n) > (1<<30)/(h+1) {
			return "", false
		}
		delta += int(m-n) * (h + 1)
		n = m
		for _, r := range input {
			if r < n {
				delta++
			}
			if r != n {
				continue
			}
			q := delta
			for k := pcBase; ; k += pcBase {
				t := k - bias
				if t < pcTMin {
					t = pcTMin
				} else if t > pcTMax {
					t = pcTMax
				}
				if q < t {
					break
				}
				out.WriteByte(punycodeDigit(t + (q-t)%(pcBase-t)))
				q = (q - t) / (pcBase - t)
			}
			out.WriteByte(punycodeDigit(q))
			bias = punycodeAdapt(delta, h+1, h == b)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return out.String(), true
}

func punycodeDigit(d int) byte {
	if d < 26 {
		return byte('a' + d)
	}
	return byte('0' + d - 26)
}

// punycodeAdapt is the bias adaptation function of RFC 3492 §6.1.
func punycodeAdapt(delta, numPoints int, first bool) int {
	if first {
		delta /= pcDamp
	} else {
		delta /= 2
	}
	delta += delta / numPoints
	k := 0
	for delta > ((pcBase-pcTMin)*pcTMax)/2 {
		delta /= pcBase - pcTMin
		k += pcBase
	}
	return k + (pcBase-pcTMin+1)*delta/(delta+pcSkew)
}
