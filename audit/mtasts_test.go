package audit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority made by the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "authmilter audit test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a server certificate for names, valid from notBefore to
// notAfter.
func (ca *testCA) leaf(t *testing.T, names []string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// stsServer serves policies on 127.0.0.1 with cert: policies maps a Host to
// the response (a body, or "redirect", or "404", or "html:"+body).
func stsServer(t *testing.T, cert tls.Certificate, policies map[string]string) (port string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := strings.Cut(r.Host, ":")
		body, ok := policies[host]
		switch {
		case r.URL.Path != "/.well-known/mta-sts.txt" || !ok || body == "404":
			http.NotFound(w, r)
		case body == "redirect":
			http.Redirect(w, r, "https://elsewhere.example/policy.txt", http.StatusMovedPermanently)
		case strings.HasPrefix(body, "html:"):
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, strings.TrimPrefix(body, "html:"))
		default:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprint(w, body)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// stsZone publishes an MTA-STS record, the policy host at 127.0.0.1 and the
// given MX hosts for domain.
func stsZone(domain string, mx ...string) string {
	z := fmt.Sprintf("_mta-sts.%[1]s. TXT \"v=STSv1; id=20261205T000000\"\nmta-sts.%[1]s. A 127.0.0.1\n", domain)
	for i, h := range mx {
		z += fmt.Sprintf("%s. MX %d %s.\n", domain, 10*(i+1), h)
	}
	return z
}

func policy(mode string, maxAge int, mx ...string) string {
	p := "version: STSv1\r\nmode: " + mode + "\r\n"
	for _, m := range mx {
		p += "mx: " + m + "\r\n"
	}
	return p + fmt.Sprintf("max_age: %d\r\n", maxAge)
}

func TestMTASTS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	domains := []string{"good.example", "wild.example", "mode.example", "testing.example", "uncovered.example",
		"redirect.example", "html.example", "short.example", "missing.example", "none.example"}
	var names []string
	for _, d := range domains {
		names = append(names, "mta-sts."+d)
	}
	now := time.Now()
	port := stsServer(t, ca.leaf(t, names, now.Add(-time.Hour), now.Add(time.Hour)), map[string]string{
		"mta-sts.good.example":      policy("enforce", 604800, "mx.good.example"),
		"mta-sts.wild.example":      "version: STSv1\nmode: enforce\nmx: *.wild.example\nmax_age: 86400\n",
		"mta-sts.mode.example":      policy("enforcing", 604800, "mx.mode.example"),
		"mta-sts.testing.example":   policy("testing", 604800, "mx.testing.example"),
		"mta-sts.uncovered.example": policy("enforce", 604800, "mx.uncovered.example"),
		"mta-sts.redirect.example":  "redirect",
		"mta-sts.html.example":      "html:" + policy("enforce", 604800, "mx.html.example"),
		"mta-sts.short.example":     policy("enforce", 3600, "mx.short.example"),
		"mta-sts.missing.example":   "404",
		"mta-sts.none.example":      policy("none", 604800),
	})
	expiredPort := stsServer(t, ca.leaf(t, []string{"mta-sts.expired.example"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour)),
		map[string]string{"mta-sts.expired.example": policy("enforce", 604800, "mx.expired.example")})

	for _, tc := range []struct {
		name, domain string
		mx           []string
		port         string
		roots        bool // trust the test CA
		want         Status
		detail       string
	}{
		{"good policy", "good.example", []string{"mx.good.example"}, port, true, StatusPass, "mode enforce, max_age 604800, mx mx.good.example"},
		{"wildcard covers one label", "wild.example", []string{"mx1.wild.example", "MX2.wild.example"}, port, true, StatusPass, "mx *.wild.example"},
		{"wildcard covers no deeper name", "wild.example", []string{"a.b.wild.example"}, port, true, StatusFail, "MX a.b.wild.example not matched"},
		{"wrong mode", "mode.example", []string{"mx.mode.example"}, port, true, StatusFail, `policy mode "enforcing"`},
		{"testing mode", "testing.example", []string{"mx.testing.example"}, port, true, StatusWarn, "mode testing"},
		{"mode none", "none.example", []string{"mx.none.example"}, port, true, StatusWarn, "mode none"},
		{"MX not covered", "uncovered.example", []string{"mx.uncovered.example", "mx2.other.example"}, port, true, StatusFail, "MX mx2.other.example not matched by any mx: pattern"},
		{"redirect not followed", "redirect.example", []string{"mx.redirect.example"}, port, true, StatusFail, "redirects are not followed"},
		{"not text/plain", "html.example", []string{"mx.html.example"}, port, true, StatusFail, `Content-Type "text/html"`},
		{"short max_age", "short.example", []string{"mx.short.example"}, port, true, StatusWarn, "max_age 3600"},
		{"no policy file", "missing.example", []string{"mx.missing.example"}, port, true, StatusFail, "HTTP status 404"},
		{"expired certificate", "expired.example", []string{"mx.expired.example"}, expiredPort, true, StatusFail, "the certificate does not verify"},
		{"unknown CA", "good.example", []string{"mx.good.example"}, port, false, StatusFail, "the certificate does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			z := loadZone(t, stsZone(tc.domain, tc.mx...))
			roots := x509.NewCertPool() // trusts nothing
			if tc.roots {
				roots = ca.pool
			}
			rep := auditZone(t, tc.domain, "", &Options{Resolver: z, HTTPClient: newHTTPClient(z, roots, time.Now, tc.port)})
			expect(t, rep, "mta_sts", tc.want)
			expectDetail(t, rep, "mta_sts", tc.want, tc.detail)
		})
	}
}

func TestMTASTSRecord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, zone string
		want       Status
		detail     string
	}{
		{"absent", "example.com. MX 10 mx.example.com.", StatusInfo, "no MTA-STS record"},
		{"not STS", `_mta-sts.example.com. TXT "v=spf1 -all"`, StatusInfo, "no v=STSv1 record"},
		{"two records", `_mta-sts.example.com. TXT "v=STSv1; id=1"` + "\n" + `_mta-sts.example.com. TXT "v=STSv1; id=2"`, StatusFail, "2 v=STSv1 records"},
		{"bad id", `_mta-sts.example.com. TXT "v=STSv1; id=a-b"`, StatusFail, "1 to 32 letters and digits"},
		{"no id", `_mta-sts.example.com. TXT "v=STSv1;"`, StatusFail, "no id="},
		{"policy host missing", `_mta-sts.example.com. TXT "v=STSv1; id=1"`, StatusFail, "resolving mta-sts.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			z := loadZone(t, tc.zone+"\n")
			rep := auditZone(t, "example.com", "", &Options{Resolver: z, HTTPClient: newHTTPClient(z, x509.NewCertPool(), time.Now, "1")})
			expect(t, rep, "mta_sts", tc.want)
			expectDetail(t, rep, "mta_sts", tc.want, tc.detail)
		})
	}
	r := failing{loadZone(t, "example.com. MX 10 mx.example.com.\n"), map[string]bool{"_mta-sts.example.com": true}}
	rep := auditZone(t, "example.com", "", &Options{Resolver: r})
	expectDetail(t, rep, "mta_sts", StatusWarn, "could not be checked")
}

func TestParseSTSPolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text, err string
	}{
		{"good", policy("enforce", 86400, "mx.example.com", "*.example.net"), ""},
		{"LF line ends, unknown key, repeated key", "version: STSv1\nmode: testing\nfoo: bar\nmode: enforce\nmx: mx.example.com\nmax_age: 0\n", ""},
		{"no version", "mode: enforce\nmx: a.example\nmax_age: 1\n", "version"},
		{"bad version", "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", "version"},
		{"no mx", "version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx"},
		{"no mx with none", "version: STSv1\nmode: none\nmax_age: 1\n", ""},
		{"max_age too large", policy("enforce", 31557601, "a.example"), "max_age"},
		{"max_age negative", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n", "max_age"},
		{"bad mx", policy("enforce", 1, "a..example"), "mx"},
		{"bad mx wildcard", policy("enforce", 1, "*a.example"), "mx"},
		{"no colon", "version STSv1\n", "not key: value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParseSTSPolicy(tc.text)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %+v, %v; want an error about %s", p, err, tc.err)
			}
		})
	}
	p, _ := ParseSTSPolicy("version: STSv1\nmode: testing\nmode: enforce\nmx: MX.example.com.\nmx: *.example.net\nmax_age: 5\n")
	if p.Mode != STSTesting || p.MaxAge != 5 {
		t.Errorf("mode %s, max_age %d: the first of a repeated key counts", p.Mode, p.MaxAge)
	}
	for host, want := range map[string]bool{"mx.example.com": true, "MX.EXAMPLE.COM.": true, "a.example.net": true,
		"example.net": false, "a.b.example.net": false, "mx.example.org": false} {
		if got := p.Matches(host); got != want {
			t.Errorf("Matches(%q) = %v, want %v", host, got, want)
		}
	}
}
