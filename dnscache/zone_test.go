package dnscache

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const overrideZone = "testdata/override.zone"

func loadTestZone(t testing.TB) *Zone {
	t.Helper()
	z, err := LoadZoneFile(overrideZone)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestZoneAnswers(t *testing.T) {
	t.Parallel()
	z := loadTestZone(t)
	ctx := context.Background()

	check := func(what string, got any, res AnswerInfo, err error, want any) {
		t.Helper()
		if err != nil || !reflect.DeepEqual(got, want) || !res.Authentic {
			t.Errorf("%s = %v (authentic %v), %v; want %v, authentic", what, got, res.Authentic, err, want)
		}
	}
	txt, res, err := z.LookupTXT(ctx, "Example.COM.")
	check("TXT example.com", txt, res, err, []string{"v=spf1 ip4:192.0.2.0/24 -all"})
	txt, res, err = z.LookupTXT(ctx, "sel._domainkey.example.com")
	check("TXT sel._domainkey", txt, res, err, []string{"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="})
	txt, res, err = z.LookupTXT(ctx, "www.example.com")
	check("TXT through CNAME", txt, res, err, []string{"v=spf1 ip4:192.0.2.0/24 -all"})
	mx, res, err := z.LookupMX(ctx, "example.com")
	check("MX", mx, res, err, []MX{{"mx.example.com", 10}})
	a, res, err := z.LookupA(ctx, "mx.example.com")
	check("A", a, res, err, []netip.Addr{netip.MustParseAddr("192.0.2.25")})
	aaaa, res, err := z.LookupAAAA(ctx, "mx.example.com")
	check("AAAA", aaaa, res, err, []netip.Addr{netip.MustParseAddr("2001:db8::25")})
	ptr, res, err := z.LookupPTR(ctx, netip.MustParseAddr("192.0.2.25"))
	check("PTR", ptr, res, err, []string{"mx.example.com"})

	if got, want := z.Origins(), []string{"example.com.", "2.0.192.in-addr.arpa."}; !reflect.DeepEqual(got, want) {
		t.Errorf("origins = %q, want %q", got, want)
	}
}

// Inside the zone, a missing name is NXDOMAIN and a name without the type
// (or with descendants only) is NODATA.
func TestZoneNegative(t *testing.T) {
	t.Parallel()
	z := loadTestZone(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		kind error
	}{
		{"nope.example.com", ErrNXDomain},
		{"deeper.mx.example.com", ErrNXDomain},
		{"mx.example.com", ErrNoData},
		{"_domainkey.example.com", ErrNoData}, // empty non-terminal (RFC 8020)
		{"out.example.com", ErrNXDomain},      // CNAME out of the zone, zone alone
	} {
		_, _, err := z.LookupTXT(ctx, tc.name)
		wantErr(t, err, tc.kind, false)
	}
	_, _, err := z.LookupPTR(ctx, netip.MustParseAddr("192.0.2.99"))
	wantErr(t, err, ErrNXDomain, false)
	_, _, err = z.LookupTXT(ctx, "example.org")
	wantErr(t, err, ErrNXDomain, false)
}

// opaque hides the package's own interfaces of the Resolver it holds, like
// a Resolver from another package.
type opaque struct{ Resolver }

func TestOverlay(t *testing.T) {
	t.Parallel()
	srv := startServer(t, echoTXT(t))
	z := loadTestZone(t)
	for _, tc := range []struct {
		name     string
		upstream Resolver
	}{
		{"package upstream", newTestClient(t, testConfig(srv.addr))},
		{"foreign upstream", opaque{newTestClient(t, testConfig(srv.addr))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Overlay(z, tc.upstream)
			ctx := context.Background()
			before := srv.queries()

			txt, res, err := r.LookupTXT(ctx, "_dmarc.example.com")
			if err != nil || !reflect.DeepEqual(txt, []string{"v=DMARC1; p=reject"}) || !res.Authentic {
				t.Errorf("zone name: %q, %v, %v", txt, res, err)
			}
			_, _, err = r.LookupTXT(ctx, "nope.example.com")
			wantErr(t, err, ErrNXDomain, false)
			_, _, err = r.LookupA(ctx, "example.com")
			wantErr(t, err, ErrNoData, false)
			if n := srv.queries() - before; n != 0 {
				t.Errorf("%d upstream queries for names in the zone", n)
			}

			txt, res, err = r.LookupTXT(ctx, "example.net")
			if err != nil || !reflect.DeepEqual(txt, []string{"ok"}) || res.Authentic {
				t.Errorf("name outside: %q, %v, %v", txt, res, err)
			}
			txt, _, err = r.LookupTXT(ctx, "out.example.com")
			if err != nil || !reflect.DeepEqual(txt, []string{"ok"}) {
				t.Errorf("CNAME out of the zone: %q, %v", txt, err)
			}
			if n := srv.queries() - before; n != 2 {
				t.Errorf("%d upstream queries, want 2", n)
			}
		})
	}
}

func TestZoneOrigins(t *testing.T) {
	t.Parallel()
	const text = `
$ORIGIN example.org.
@                 TXT "org"
$ORIGIN sub       ; relative to example.org.
x                 TXT "x"
other.example.    300 IN SOA ns.other.example. h.other.example. 1 2 3 4 5
other.example.    TXT "soa origin"
deep.name.other.example. A 192.0.2.7
apex.example.net. TXT "given origin"
`
	z, err := LoadZone(strings.NewReader(text), "example.net.", "multi.zone")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"example.net.", "example.org.", "sub.example.org.", "other.example."}
	if got := z.Origins(); !reflect.DeepEqual(got, want) {
		t.Errorf("origins = %q, want %q", got, want)
	}
	for name, covered := range map[string]bool{
		"example.net": true, "a.b.example.net.": true, "EXAMPLE.ORG": true, "x.sub.example.org": true,
		"name.other.example": true, "example.com": false, "xexample.net": false, "net": false,
	} {
		if z.Covers(name) != covered {
			t.Errorf("Covers(%q) = %v", name, !covered)
		}
	}
	ctx := context.Background()
	if txt, _, err := z.LookupTXT(ctx, "x.sub.example.org"); err != nil || txt[0] != "x" {
		t.Errorf("x.sub.example.org: %q, %v", txt, err)
	}
	if a, _, err := z.LookupA(ctx, "deep.name.other.example"); err != nil || a[0] != netip.MustParseAddr("192.0.2.7") {
		t.Errorf("deep.name.other.example: %v, %v", a, err)
	}
	_, _, err = z.LookupA(ctx, "name.other.example")
	wantErr(t, err, ErrNoData, false)
	_, _, err = z.LookupTXT(ctx, "nope.example.net")
	wantErr(t, err, ErrNXDomain, false)
}

// Directives only count at the start of an entry: inside parentheses or
// quotes the same text is data.
func TestZoneDirectivesInData(t *testing.T) {
	t.Parallel()
	const text = "$ORIGIN example.com.\n" +
		"a TXT ( \"one\"\n" +
		"$GENERATE )\n" +
		"b TXT \"two ; $INCLUDE\"\n"
	z, err := LoadZone(strings.NewReader(text), "", "data.zone")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if txt, _, err := z.LookupTXT(ctx, "a.example.com"); err != nil || txt[0] != "one$GENERATE" {
		t.Errorf("a: %q, %v", txt, err)
	}
	if txt, _, err := z.LookupTXT(ctx, "b.example.com"); err != nil || txt[0] != "two ; $INCLUDE" {
		t.Errorf("b: %q, %v", txt, err)
	}
}

func TestLoadZoneErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, origin, text, want string
	}{
		{"bad record", "example.com.", "@ TXT ok\n\nwww A 192.0.2\n", "bad.zone: dns: bad A A: \"192.0.2\" at line: 3:"},
		{"unknown type", "example.com.", "@ TXT ok\nwww FOO bar\n", "bad.zone: dns: "},
		{"$GENERATE", "example.com.", "@ TXT ok\n$GENERATE 1-100 h$ A 192.0.2.$\n", "bad.zone:2: $GENERATE is not supported"},
		{"$INCLUDE", "example.com.", "$INCLUDE /etc/passwd\n", "bad.zone:1: $INCLUDE is not supported"},
		{"outside the origins", "", "$ORIGIN example.com.\n@ TXT ok\nfoo.example.net. TXT x\n", "bad.zone: foo.example.net. is outside the zone's origins (example.com.)"},
		{"relative name without origin", "", "foo.example. TXT x\nbar TXT y\n", "bad.zone: dns: bad owner name"},
		{"CNAME and other data", "example.com.", "www CNAME @\nwww TXT x\n", "bad.zone: www.example.com.: CNAME and other data"},
		{"two CNAMEs", "example.com.", "www CNAME @\nwww CNAME a\n", "bad.zone: www.example.com.: more than one CNAME"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadZone(strings.NewReader(tc.text), tc.origin, "bad.zone")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := LoadZoneFile("testdata/missing.zone"); err == nil || !strings.Contains(err.Error(), "testdata/missing.zone") {
		t.Errorf("missing file: %v", err)
	}
}

// A file whose names are all absolute needs no $ORIGIN or SOA: it covers
// the names at or under its highest owners.
func TestZoneAbsoluteNamesOnly(t *testing.T) {
	t.Parallel()
	text := "example.com. TXT \"v=spf1 -all\"\n_dmarc.example.com. TXT \"v=DMARC1; p=none\"\n" +
		"example.com._report._dmarc.example.net. TXT \"v=DMARC1\"\n"
	z, err := LoadZone(strings.NewReader(text), "", "abs.zone")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := z.Origins(), []string{"example.com.", "example.com._report._dmarc.example.net."}; !reflect.DeepEqual(got, want) {
		t.Errorf("Origins() = %q, want %q", got, want)
	}
	ctx := context.Background()
	if txt, _, err := z.LookupTXT(ctx, "_dmarc.example.com"); err != nil || txt[0] != "v=DMARC1; p=none" {
		t.Errorf("_dmarc: %q, %v", txt, err)
	}
	if _, _, err := z.LookupTXT(ctx, "missing.example.com"); !errors.Is(err, ErrNXDomain) {
		t.Errorf("missing.example.com: %v, want NXDOMAIN", err)
	}
	if _, _, err := z.LookupA(ctx, "example.com"); !errors.Is(err, ErrNoData) {
		t.Errorf("A example.com: %v, want NODATA", err)
	}
	if z.Covers("example.net") {
		t.Error("the zone covers example.net, which only has a name below it in the file")
	}
}

// Duplicate records collapse (RFC 2181 §5); classes other than IN are
// ignored.
func TestZoneDuplicatesAndClasses(t *testing.T) {
	t.Parallel()
	z, err := LoadZone(strings.NewReader("@ TXT a\n@ 60 TXT a\n@ CH TXT chaos\n"), "example.com.", "dup.zone")
	if err != nil {
		t.Fatal(err)
	}
	if txt, _, err := z.LookupTXT(context.Background(), "example.com"); err != nil || !reflect.DeepEqual(txt, []string{"a"}) {
		t.Errorf("TXT = %q, %v", txt, err)
	}
}

// FuzzLoadZone: the loader must not panic, and a loaded zone must answer
// without panicking.
func FuzzLoadZone(f *testing.F) {
	seed, err := os.ReadFile(overrideZone)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("@ TXT ( \"a\"\n$ORIGIN x )\n$ORIGIN sub\nwww CNAME @\n"))
	f.Add([]byte("a CNAME b\nb CNAME a\nc. SOA c. c. 1 2 3 4 5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		// With an origin, and without one (absolute names only).
		for _, origin := range []string{"example.com.", ""} {
			z, err := LoadZone(bytes.NewReader(data), origin, "fuzz.zone")
			if err != nil {
				continue
			}
			ctx := context.Background()
			names := append(z.Origins(), "example.com", "www.example.com", "a.example.com", "x.sub.example.com")
			for _, n := range names {
				if !z.Covers(n) && slices.Contains(z.Origins(), n) {
					t.Errorf("origin %q not covered", n)
				}
				for _, qtype := range []uint16{dns.TypeTXT, dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypePTR} {
					_, _ = z.query(ctx, qtype, canonical(n))
				}
			}
		}
	})
}
