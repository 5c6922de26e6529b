package headerfold

import (
	"strings"
	"testing"
)

func TestFold(t *testing.T) {
	names := strings.Split("From:To:Cc:Subject:Date:Message-ID:Reply-To:In-Reply-To:References:MIME-Version:Content-Type", ":")
	p := []Piece{{S: "v=1;"}, {S: "d=example.com;"}}
	p = append(p, Names("h", names, ";")...)
	p = append(p, Base64("b", strings.Repeat("A", 150), "")...)
	raw := string(Fold("DKIM-Signature", p))
	if !strings.HasSuffix(raw, "\r\n") || !strings.HasPrefix(raw, "DKIM-Signature: v=1; d=example.com; h=From:To:") {
		t.Fatalf("layout:\n%s", raw)
	}
	lines := strings.Split(strings.TrimSuffix(raw, "\r\n"), "\r\n")
	for i, l := range lines {
		if len(l) > MaxLine {
			t.Errorf("line %d has %d columns: %q", i, len(l), l)
		}
		if i > 0 && !strings.HasPrefix(l, " ") {
			t.Errorf("continuation line %d does not start with WSP: %q", i, l)
		}
	}
	// Unfolding and removing the FWS inside h= and b= gives the value back.
	flat := strings.ReplaceAll(strings.ReplaceAll(raw, "\r\n ", " "), ": ", ":")
	if !strings.Contains(flat, "h="+strings.Join(names, ":")+";") {
		t.Errorf("h= not recoverable:\n%s", raw)
	}
	if !strings.Contains(strings.ReplaceAll(raw, "\r\n ", ""), "b="+strings.Repeat("A", 150)+"\r\n") {
		t.Errorf("b= not recoverable:\n%s", raw)
	}
	if got := string(Fold("X", Words("a  b\tc"))); got != "X: a b c\r\n" {
		t.Errorf("Words: %q", got)
	}
}
