package dnscache_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/authmilter/authmilter/dnscache"
)

// The daemon's resolver: upstream servers, a cache, and a zone file that
// overrides example.com and 2.0.192.in-addr.arpa. Names in the zone are
// answered without any query.
func ExampleNew() {
	r, err := dnscache.New(dnscache.Config{
		Servers:  []string{"192.0.2.53"}, // default: /etc/resolv.conf
		Timeout:  2 * time.Second,
		ZoneFile: "testdata/override.zone",
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	txt, res, err := r.LookupTXT(ctx, "_dmarc.example.com")
	fmt.Println(txt, res.Authentic, err)

	_, _, err = r.LookupTXT(ctx, "nope.example.com")
	fmt.Println(errors.Is(err, dnscache.ErrNXDomain), dnscache.IsNotFound(err))
	// Output:
	// [v=DMARC1; p=reject] true <nil>
	// true true
}

// A zone loaded from text, in front of another resolver.
func ExampleOverlay() {
	zone, err := dnscache.LoadZone(strings.NewReader(`
@      TXT "v=spf1 mx -all"
@      MX  10 mx
mx     A   192.0.2.25
`), "example.com.", "override.zone")
	if err != nil {
		log.Fatal(err)
	}
	client, err := dnscache.NewClient(dnscache.Config{Servers: []string{"192.0.2.53"}})
	if err != nil {
		log.Fatal(err)
	}
	r := dnscache.Overlay(zone, dnscache.NewCache(client, dnscache.Config{}))

	ctx := context.Background()
	mx, _, _ := r.LookupMX(ctx, "example.com")
	addrs, _, _ := r.LookupA(ctx, mx[0].Host)
	fmt.Println(mx[0].Host, addrs)
	_, _, err = r.LookupAAAA(ctx, "mx.example.com")
	fmt.Println(errors.Is(err, dnscache.ErrNoData))
	// Output:
	// mx.example.com [192.0.2.25]
	// true
}
