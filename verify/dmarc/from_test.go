package dmarc

import (
	"errors"
	"slices"
	"testing"
)

func TestAuthorDomains(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		from []string
		want []string
		err  error
	}{
		{"bare addr-spec", []string{"user@example.com"}, []string{"example.com"}, nil},
		{"name-addr", []string{` "Jane Doe" <jane@Example.COM>`}, []string{"example.com"}, nil},
		{"folded", []string{" Jane\r\n Doe <jane@example.com>"}, []string{"example.com"}, nil},
		{"comment", []string{"jane@example.com (Jane)"}, []string{"example.com"}, nil},
		{"trailing dot", []string{"jane@example.com."}, []string{"example.com"}, nil},
		{"encoded word, known charset", []string{"=?utf-8?q?J=C3=A4ne?= <jane@example.com>"}, []string{"example.com"}, nil},
		{"encoded word, unknown charset", []string{"=?x-unknown?q?Jane?= <jane@example.com>"}, []string{"example.com"}, nil},
		{"IDN domain", []string{"user@bücher.example"}, []string{"xn--bcher-kva.example"}, nil},
		{"EAI local part", []string{"用户@例子.example"}, []string{"xn--fsqu00a.example"}, nil},
		{"two addresses, two domains", []string{"a@example.com, b@example.net"}, []string{"example.com", "example.net"}, nil},
		{"two addresses, one domain", []string{"a@example.com, B <b@EXAMPLE.com>"}, []string{"example.com"}, nil},
		{"two fields", []string{"a@example.com", "b@example.org"}, []string{"example.com", "example.org"}, nil},
		{"two fields, same domain", []string{"a@example.com", "a@example.com"}, []string{"example.com"}, nil},
		{"group", []string{"friends: a@example.com, b@example.net;"}, []string{"example.com", "example.net"}, nil},
		// Display-name junk net/mail refuses; the tolerant scanner still
		// finds the address.
		{"unquoted specials in display name", []string{"Jane @ Work <jane@example.com>"}, []string{"example.com"}, nil},
		{"unbalanced quote in display name", []string{`"Jane <jane@example.com>`}, []string{"example.com"}, nil},
		{"display name with comma", []string{"Doe, Jane <jane@example.com>"}, []string{"example.com"}, nil},
		{"dots in display name", []string{"J. R. Doe <jane@example.com>"}, []string{"example.com"}, nil},
		{"quoted @ in display name", []string{`"evil@example.net" <jane@example.com>`}, []string{"example.com"}, nil},
		{"angle-addr with route junk", []string{"Jane <jane@example.com> (extra <x@y.z>"}, []string{"example.com"}, nil},
		{"no From field", nil, nil, ErrNoFrom},
		{"empty field", []string{"  "}, nil, ErrNoAuthor},
		{"empty group", []string{"undisclosed-recipients:;"}, nil, ErrNoAuthor},
		{"no address", []string{"Jane Doe"}, nil, ErrFromSyntax},
		{"no domain", []string{"<jane>"}, nil, ErrFromSyntax},
		{"address literal", []string{"jane@[192.0.2.1]"}, nil, ErrAuthorDomain},
		{"invalid domain", []string{"jane@exa_mple..com"}, nil, ErrAuthorDomain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := AuthorDomains(tc.from)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("AuthorDomains(%q) = %q, %v; want %v", tc.from, got, err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("AuthorDomains(%q) = %q, %v; want %q", tc.from, got, err, tc.want)
			}
		})
	}
}

func FuzzAuthorDomains(f *testing.F) {
	for _, s := range []string{
		"user@example.com",
		`"Jane, Doe" <jane@example.com>, b@bücher.example`,
		"=?x?q?a?= <a@b.example> (c <d@e.example>)",
		`"unbalanced <a@example.com>`,
		"group: a@example.com;",
		"a@[192.0.2.1]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		domains, err := AuthorDomains([]string{v})
		if err != nil {
			if len(domains) != 0 {
				t.Fatalf("domains %q with error %v", domains, err)
			}
			return
		}
		if len(domains) == 0 {
			t.Fatalf("AuthorDomains(%q): no domain and no error", v)
		}
		for _, d := range domains {
			if n, err := normalizeDomain(d); err != nil || n != d {
				t.Fatalf("AuthorDomains(%q) returned %q, not normalised (%q, %v)", v, d, n, err)
			}
		}
	})
}
