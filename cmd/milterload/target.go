package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/authmilter/authmilter/milter"
)

// parseTarget reads a milter address in the MTA's notation (inet:HOST:PORT,
// inet:[::1]:PORT, inet:PORT@HOST, unix:PATH) and refuses anything but a
// Unix socket or a loopback address: a load tool must not be pointed at
// other people's servers.
func parseTarget(ctx context.Context, spec string) (network, addr string, err error) {
	network, addr, err = milter.ParseListen(spec)
	if err != nil {
		return "", "", fmt.Errorf("--milter: %s", strings.Replace(err.Error(), "listen ", "", 1))
	}
	if network == "unix" {
		return network, addr, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("--milter %q: %v", spec, err)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if strings.EqualFold(host, "localhost") {
		addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return "", "", fmt.Errorf("--milter %q: %v", spec, err)
		}
	} else {
		return "", "", fmt.Errorf("--milter %q: only loopback addresses and unix sockets are allowed", spec)
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return "", "", fmt.Errorf("--milter %q: %s is not a loopback address; only loopback addresses and unix sockets are allowed", spec, a)
		}
	}
	return network, addr, nil
}
