package dmarc

import "testing"

func TestNormalizeDomain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		err            bool
	}{
		{"lower case", "example.com", "example.com", false},
		{"mixed case", "WwW.Example.COM", "www.example.com", false},
		{"trailing dot", "example.com.", "example.com", false},
		{"surrounding space", " example.com ", "example.com", false},
		{"underscore tolerated", "my_host.example.com", "my_host.example.com", false},
		{"U-labels", "食狮.公司.cn", "xn--85x722f.xn--55qx5d.cn", false},
		{"upper-case U-label", "BÜCHER.example", "xn--bcher-kva.example", false},
		{"ideographic full stop", "食狮。中国", "xn--85x722f.xn--fiqs8s", false},
		{"A-labels kept", "XN--85X722F.com.cn", "xn--85x722f.com.cn", false},
		{"empty", "", "", true},
		{"only a dot", ".", "", true},
		{"empty label", "a..example", "", true},
		{"leading dot", ".example.com", "", true},
		{"address literal", "[192.0.2.1]", "", true},
		{"space inside", "exa mple.com", "", true},
		{"disallowed character", "a≠b.example", "", true},
		{"A-label that does not decode", "xn--abc.example", "", true},
		{"invalid UTF-8", "a\xffb.example", "", true},
		{"label too long", "a234567890123456789012345678901234567890123456789012345678901234.example", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := normalizeDomain(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("normalizeDomain(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}
