package audit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/authmilter/authmilter/dnscache"
)

// NewHTTPClient returns the client for MTA-STS policy fetches: host names
// resolved through r (so that a zone file answers them too), certificates
// verified against roots (nil: the system's) at the time now gives (nil:
// time.Now), no proxy, and redirects not followed (RFC 8461 §3.3).
func NewHTTPClient(r dnscache.Resolver, roots *x509.CertPool, now func() time.Time) *http.Client {
	return newHTTPClient(r, roots, now, "")
}

// newHTTPClient is NewHTTPClient; port, when not empty, replaces the port
// dialled (tests serve HTTPS on 127.0.0.1 at a port of their own).
func newHTTPClient(r dnscache.Resolver, roots *x509.CertPool, now func() time.Time, port string) *http.Client {
	d := &resolvingDialer{r: r, port: port}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:            d.DialContext,
			TLSClientConfig:        &tls.Config{RootCAs: roots, Time: now, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    10 * time.Second,
			ResponseHeaderTimeout:  10 * time.Second,
			MaxResponseHeaderBytes: 64 << 10,
			DisableKeepAlives:      true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

// resolvingDialer dials host:port after resolving host with a
// dnscache.Resolver, trying each address in turn.
type resolvingDialer struct {
	r    dnscache.Resolver
	port string
}

func (d *resolvingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if d.port != "" {
		port = d.port
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		a4, _, err4 := d.r.LookupA(ctx, host)
		a6, _, err6 := d.r.LookupAAAA(ctx, host)
		addrs = append(a4, a6...)
		if len(addrs) == 0 {
			if err4 != nil && !dnscache.IsNotFound(err4) {
				return nil, fmt.Errorf("resolving %s: %w", host, err4)
			}
			if err6 != nil && !dnscache.IsNotFound(err6) {
				return nil, fmt.Errorf("resolving %s: %w", host, err6)
			}
			return nil, fmt.Errorf("resolving %s: %w", host, err4)
		}
	}
	var nd net.Dialer
	var errs []error
	for _, ip := range addrs {
		c, err := nd.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}
