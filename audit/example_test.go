package audit_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/authmilter/authmilter/audit"
	"github.com/authmilter/authmilter/dnscache"
)

func ExampleDomain() {
	// Records staged in a zone file before they are published.
	zone, err := dnscache.LoadZone(strings.NewReader(`
example.com.        TXT "v=spf1 mx include:_spf.example.net ~all"
example.com.        MX  10 mx.example.com.
_dmarc.example.com. TXT "v=DMARC1; p=none; pct=50; rua=mailto:dmarc@example.com"
`), "", "staged.zone")
	if err != nil {
		panic(err)
	}
	rep := audit.Domain(context.Background(), "example.com", &audit.Options{Resolver: zone})
	for _, c := range rep.Checks {
		if strings.HasPrefix(c.ID, "spf.") || strings.HasPrefix(c.ID, "dmarc.") {
			fmt.Printf("%s %s\n", c.Status, c.ID)
		}
	}
	fmt.Println("failed:", rep.Failed())
	// Output:
	// pass spf.record
	// fail spf.record
	// pass spf.lookups
	// pass spf.all
	// pass spf.ptr
	// pass dmarc.record
	// warn dmarc.policy
	// warn dmarc.deprecated
	// pass dmarc.rua
	// failed: true
}
