// Command benchmail writes the benchmark corpus that milterload replays:
// messages of nine classes (DKIM RSA and Ed25519, SPF and DMARC pass and
// fail, ARC chains of one and two hops, …) in sizes of 2, 20 and 200 KB,
// each with its envelope, the DNS zone that answers for them, the verdict
// each should get, sealing keys and authmilter configurations. The same
// seed gives the same corpus.
//
// Usage:
//
//	benchmail [flags] -o DIR
//	benchmail --list
//
// It is a command of its own, apart from milterload, because it signs and
// seals (package arc): milterload and its null milter link no verifier.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/authmilter/authmilter/internal/testsupport/benchmail"
)

func main() {
	if err := genMain(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "benchmail:", err)
		}
		os.Exit(2)
	}
}

// genMain writes a benchmark corpus (see package benchmail).
func genMain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("benchmail", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: benchmail [flags] -o DIR\n\nWrites NAME.eml + NAME.env per message, bench.zone, mix.tsv, sealing keys and authmilter configs.\n\nflags:")
		fs.PrintDefaults()
	}
	out := fs.String("o", "", "output directory (required)")
	seed := fs.Uint64("seed", 1, "seed: the same seed gives the same keys, zone, envelopes and texts")
	per := fs.Int("per-class", 4, "messages per class and size")
	classes := fs.String("classes", "", "comma-separated classes (default all)")
	sizes := fs.String("sizes", "2KB,20KB,200KB", "comma-separated nominal sizes among 2KB, 20KB, 200KB")
	listen := fs.String("listen", "inet:127.0.0.1:8895", "listen address written into the authmilter configs")
	sealer := fs.String("arc-sealer", string(benchmail.SealDkimpy), "what seals the ARC chains: dkimpy (python3-dkim and python3-authres) or authmilter (its own sealer)")
	distinct := fs.Bool("distinct-senders", false, "give every message sender domains of its own (rsa-N.example, …), all in the zone, so that each message is judged with a cold DNS cache; the configs trust every message's list as ARC sealer")
	list := fs.Bool("list", false, "list the classes and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *list {
		for _, c := range benchmail.Classes {
			e := benchmail.ExpectFor(c)
			fmt.Fprintf(stdout, "%-18s spf=%s dkim=%s dmarc=%s arc=%s → %s\n", c, e.SPF, e.DKIM, e.DMARC, e.ARC, e.Action)
		}
		return nil
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("want -o DIR and no arguments")
	}
	if *per < 1 || *per > 1000 {
		return fmt.Errorf("-per-class %d: want 1 to 1000", *per)
	}
	opts := benchmail.Options{Seed: *seed, PerClass: *per, Sealer: benchmail.ARCSealer(*sealer), DistinctSenders: *distinct}
	for _, c := range splitList(*classes) {
		opts.Classes = append(opts.Classes, benchmail.Class(c))
	}
	for _, s := range splitList(*sizes) {
		found := false
		for _, z := range benchmail.Sizes {
			if z.Name == s {
				opts.Sizes, found = append(opts.Sizes, z), true
			}
		}
		if !found {
			return fmt.Errorf("unknown size %q (want 2KB, 20KB or 200KB)", s)
		}
	}
	c, err := benchmail.Generate(opts)
	if err != nil {
		return err
	}
	if err := c.WriteDir(*out, *listen); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d messages (ARC sealed by %s), %s, %s and authmilter configs to %s\n", len(c.Messages), c.Sealer, benchmail.ZoneFile, benchmail.MixFile, *out)
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
