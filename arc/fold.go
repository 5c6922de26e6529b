package arc

import "github.com/authmilter/authmilter/internal/headerfold"

// piece, fold, words and base64Pieces are the shared header layout
// (internal/headerfold), which DKIM signing uses too.
type piece = headerfold.Piece

// maxLine is the line length folding aims for.
const maxLine = headerfold.MaxLine

func fold(name string, pieces []piece) []byte { return headerfold.Fold(name, pieces) }

func words(text string) []piece { return headerfold.Words(text) }

func base64Pieces(tag, value, end string) []piece { return headerfold.Base64(tag, value, end) }
