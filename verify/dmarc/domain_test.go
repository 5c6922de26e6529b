package dmarc

import "testing"

func TestPunycode(t *testing.T) {
	t.Parallel()
	// RFC 3492 §7.1 samples (A), (B), (L) and common IDN labels.
	tests := []struct{ in, want string }{
		{"\u0644\u064A\u0647\u0645\u0627\u0628\u062A\u0643\u0644\u0645\u0648\u0634\u0639\u0631\u0628\u064A\u061F", "egbpdaj6bu4bxfgehfvwxn"},
		{"\u4ED6\u4EEC\u4E3A\u4EC0\u4E48\u4E0D\u8BF4\u4E2D\u6587", "ihqwcrb4cv8a8dqg056pqjye"},
		{"3\u5E74B\u7D44\u91D1\u516B\u5148\u751F", "3B-ww4c5e180e575a65lsy2b"},
		{"bücher", "bcher-kva"},
		{"münchen", "mnchen-3ya"},
		{"hamarøy", "hamary-fya"},
		{"食狮", "85x722f"},
		{"ドメイン名例", "eckwd4c7cu47r2wf"},
		{"ελληνικά", "hxargifdar"},
		{"президент", "d1abbgf6aiiy"},
	}
	for _, tc := range tests {
		got, ok := punycodeEncode([]rune(tc.in))
		if !ok || got != tc.want {
			t.Errorf("punycode(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

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
		{"symbol in U-label", "a☃b.example", "", true},
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
