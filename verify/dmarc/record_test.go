package dmarc

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseRecord(t *testing.T) {
	t.Parallel()
	// def returns a record with the defaults and the given changes.
	def := func(raw string, f func(r *Record)) *Record {
		r := &Record{ADKIM: ModeRelaxed, ASPF: ModeRelaxed, PSD: PSDUnknown, Percent: 100, FO: "0", Raw: raw}
		if f != nil {
			f(r)
		}
		return r
	}
	tests := []struct {
		name string
		in   string
		want func(raw string) *Record // nil: ErrNotDMARC
	}{
		{"minimal", "v=DMARC1; p=none", func(s string) *Record {
			return def(s, func(r *Record) { r.Policy = PolicyNone })
		}},
		{"version only", "v=DMARC1", func(s string) *Record { return def(s, nil) }},
		{"version and semicolon", "v=DMARC1;", func(s string) *Record { return def(s, nil) }},
		{"all RFC 9989 tags", "v=DMARC1; p=reject; sp=quarantine; np=reject; psd=n; t=y; adkim=s; aspf=s; fo=1:d:s; rua=mailto:a@example.com, mailto:b@example.net; ruf=mailto:f@example.com",
			func(s string) *Record {
				return def(s, func(r *Record) {
					r.Policy, r.SubdomainPolicy, r.NonexistentPolicy = PolicyReject, PolicyQuarantine, PolicyReject
					r.PSD, r.Testing, r.ADKIM, r.ASPF, r.FO = PSDNo, true, ModeStrict, ModeStrict, "1:d:s"
					r.RUA = []string{"mailto:a@example.com", "mailto:b@example.net"}
					r.RUF = []string{"mailto:f@example.com"}
				})
			}},
		{"RFC 7489 legacy tags", "v=DMARC1; p=quarantine; pct=25; rf=afrf; ri=3600; rua=mailto:r@example.com!10m",
			func(s string) *Record {
				return def(s, func(r *Record) {
					r.Policy, r.Percent, r.RF, r.RI = PolicyQuarantine, 25, "afrf", "3600"
					r.RUA = []string{"mailto:r@example.com"}
				})
			}},
		{"values case-insensitive", "v=DMARC1; p=Reject; SP=NONE; Adkim=S; psd=Y; t=N", func(s string) *Record {
			return def(s, func(r *Record) {
				r.Policy, r.SubdomainPolicy, r.ADKIM, r.PSD = PolicyReject, PolicyNone, ModeStrict, PSDYes
			})
		}},
		{"upper-case v tag name", "V=DMARC1; p=reject", func(s string) *Record {
			return def(s, func(r *Record) { r.Policy = PolicyReject })
		}},
		{"whitespace around separators", "v = DMARC1 ;\tp = reject ; ", func(s string) *Record {
			return def(s, func(r *Record) { r.Policy = PolicyReject })
		}},
		{"unknown tags ignored", "v=DMARC1; p=reject; foo=bar; x-y=z", func(s string) *Record {
			return def(s, func(r *Record) { r.Policy = PolicyReject })
		}},
		{"junk spec ignored", "v=DMARC1; junk; p=reject;;", func(s string) *Record {
			return def(s, func(r *Record) { r.Policy = PolicyReject })
		}},
		{"invalid values keep defaults", "v=DMARC1; p=bounce; sp=; np=x; psd=maybe; t=yes; adkim=x; aspf=; pct=101; fo=2; ri=soon",
			func(s string) *Record {
				return def(s, func(r *Record) {
					r.Invalid = []string{"p", "sp", "np", "psd", "t", "adkim", "aspf", "pct", "fo", "ri"}
				})
			}},
		{"negative and signed pct invalid", "v=DMARC1; p=none; pct=-1", func(s string) *Record {
			return def(s, func(r *Record) { r.Policy, r.Invalid = PolicyNone, []string{"pct"} })
		}},
		{"pct zero", "v=DMARC1; p=reject; pct=0", func(s string) *Record {
			return def(s, func(r *Record) { r.Policy, r.Percent = PolicyReject, 0 })
		}},
		{"duplicate tag keeps first", "v=DMARC1; p=none; p=reject", func(s string) *Record {
			return def(s, func(r *Record) { r.Policy, r.Duplicate = PolicyNone, []string{"p"} })
		}},
		{"second version tag", "v=DMARC1; v=DMARC2; p=none", func(s string) *Record {
			return def(s, func(r *Record) { r.Policy, r.Duplicate = PolicyNone, []string{"v"} })
		}},
		{"rua with an invalid URI keeps the valid ones", "v=DMARC1; rua=not a uri,mailto:ok@example.com", func(s string) *Record {
			return def(s, func(r *Record) { r.RUA, r.Invalid = []string{"mailto:ok@example.com"}, []string{"rua"} })
		}},
		{"rua without scheme", "v=DMARC1; rua=dmarc@example.com", func(s string) *Record {
			return def(s, func(r *Record) { r.Invalid = []string{"rua"} })
		}},
		{"leading whitespace tolerated", "  v=DMARC1; p=none", func(s string) *Record {
			return def(s, func(r *Record) { r.Policy = PolicyNone })
		}},
		{"value case-sensitive", "v=dmarc1; p=reject", nil},
		{"version not first", "p=reject; v=DMARC1", nil},
		{"other version", "v=DMARC2; p=reject", nil},
		{"missing separator", "v=DMARC1 p=reject", nil},
		{"SPF record", "v=spf1 -all", nil},
		{"empty", "", nil},
		{"v without value", "v=; p=reject", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRecord(tc.in)
			if tc.want == nil {
				if !errors.Is(err, ErrNotDMARC) || got != nil || IsDMARCRecord(tc.in) {
					t.Fatalf("ParseRecord(%q) = %+v, %v; want ErrNotDMARC", tc.in, got, err)
				}
				return
			}
			if err != nil || !IsDMARCRecord(tc.in) {
				t.Fatalf("ParseRecord(%q): %v", tc.in, err)
			}
			got.Tags, got.Ignored = nil, nil // TestParseRecordTags
			if want := tc.want(tc.in); !reflect.DeepEqual(got, want) {
				t.Errorf("ParseRecord(%q)\n got %+v\nwant %+v", tc.in, got, want)
			}
		})
	}
}

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=none",
		"v=DMARC1; p=reject; sp=quarantine; np=reject; psd=y; t=y; adkim=s; aspf=r; pct=50",
		"v=DMARC1; rua=mailto:a@example.com!10m, mailto:b@example.net; ruf=mailto:c@example.org; fo=0:d",
		"v=DMARC1;;;p=;=;x",
		"V = DMARC1 ; P = Reject",
		"v=spf1 -all",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRecord(s)
		if err != nil {
			if !errors.Is(err, ErrNotDMARC) || r != nil || IsDMARCRecord(s) {
				t.Fatalf("ParseRecord(%q) = %v, %v", s, r, err)
			}
			return
		}
		if !IsDMARCRecord(s) || r.Raw != s {
			t.Fatalf("ParseRecord(%q) accepted a record IsDMARCRecord refuses", s)
		}
		for _, p := range []Policy{r.Policy, r.SubdomainPolicy, r.NonexistentPolicy} {
			if p != "" && p.strictness() == 0 {
				t.Fatalf("bad policy %q", p)
			}
		}
		if r.Percent < 0 || r.Percent > 100 {
			t.Fatalf("pct %d", r.Percent)
		}
		if (r.ADKIM != ModeRelaxed && r.ADKIM != ModeStrict) || (r.ASPF != ModeRelaxed && r.ASPF != ModeStrict) {
			t.Fatalf("modes %q %q", r.ADKIM, r.ASPF)
		}
		switch r.PSD {
		case PSDYes, PSDNo, PSDUnknown:
		default:
			t.Fatalf("psd %q", r.PSD)
		}
		for _, u := range append(append([]string(nil), r.RUA...), r.RUF...) {
			if !validURI(u) {
				t.Fatalf("kept invalid URI %q", u)
			}
		}
	})
}

// Tags lists the known tags given, Ignored the specs RFC 9989 §4.7 and §4.8
// make a receiver skip.
func TestParseRecordTags(t *testing.T) {
	t.Parallel()
	r, err := ParseRecord("v=DMARC1; p=none; junk; pct=100; x-y=z; P=reject; rua=bad")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"p", "pct", "rua"}; !reflect.DeepEqual(r.Tags, want) {
		t.Errorf("Tags = %q, want %q", r.Tags, want)
	}
	if want := []string{"junk", "x-y=z"}; !reflect.DeepEqual(r.Ignored, want) {
		t.Errorf("Ignored = %q, want %q", r.Ignored, want)
	}
	if !r.Has("pct") || r.Has("rf") {
		t.Errorf("Has(pct) = %v, Has(rf) = %v", r.Has("pct"), r.Has("rf"))
	}
}
