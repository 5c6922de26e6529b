package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/authmilter/authmilter/internal/testsupport/benchmail"
)

// genMain writes a benchmark corpus (see package benchmail).
func genMain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("milterload gen", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: milterload gen [flags] -o DIR\n\nWrites NAME.eml + NAME.env per message, bench.zone, mix.tsv, sealing keys and authmilter configs.\n\nflags:")
		fs.PrintDefaults()
	}
	out := fs.String("o", "", "output directory (required)")
	seed := fs.Uint64("seed", 1, "seed: the same seed gives the same keys, zone, envelopes and texts")
	per := fs.Int("per-class", 4, "messages per class and size")
	classes := fs.String("classes", "", "comma-separated classes (default all)")
	sizes := fs.String("sizes", "2KB,20KB,200KB", "comma-separated nominal sizes among 2KB, 20KB, 200KB")
	listen := fs.String("listen", "inet:127.0.0.1:8895", "listen address written into the authmilter configs")
	sealer := fs.String("arc-sealer", string(benchmail.SealDkimpy), "what seals the ARC chains: dkimpy (python3-dkim and python3-authres) or authmilter (its own sealer)")
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
		return errors.New("gen: want -o DIR and no arguments")
	}
	if *per < 1 || *per > 1000 {
		return fmt.Errorf("gen: -per-class %d: want 1 to 1000", *per)
	}
	opts := benchmail.Options{Seed: *seed, PerClass: *per, Sealer: benchmail.ARCSealer(*sealer)}
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
			return fmt.Errorf("gen: unknown size %q (want 2KB, 20KB or 200KB)", s)
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
