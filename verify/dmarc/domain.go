package dmarc

import (
	"strings"

	"github.com/authmilter/authmilter/domain"
)

// normalizeDomain returns d in the form every comparison and query in this
// package uses (domain.Parse): A-labels (RFC 9989 §5.3.1, RFC 8616 §6: a
// U-label and its A-label are the same domain), lower case (RFC 9989 §4.4,
// RFC 4343), without the trailing dot. Surrounding white space is ignored.
func normalizeDomain(d string) (string, error) {
	n, err := domain.Parse(strings.TrimSpace(d))
	if err != nil {
		return "", err
	}
	return n.ASCII, nil
}

// labelCount returns the number of labels of a normalised domain.
func labelCount(d string) int { return domain.Name{ASCII: d}.Labels() }

// lastLabels returns the right-most n labels of a normalised domain.
func lastLabels(d string, n int) string { return domain.Name{ASCII: d}.LastLabels(n).ASCII }
