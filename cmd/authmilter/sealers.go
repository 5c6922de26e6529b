package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authmilter/authmilter/engine"
	"github.com/authmilter/authmilter/internal/metrics"
)

// sealerInterval is how often the daemon writes the sealer state file.
const sealerInterval = 5 * time.Minute

// startSealers creates the sealer evidence of the daemon and continues the
// counts of the state file, if there is one.
func (d *daemon) startSealers(cfg *Config, reg *metrics.Registry) {
	d.sealers = engine.NewSealerStats(reg, cfg.ARC.SealerStats.MaxSealers, nil)
	d.sealerFile = cfg.ARC.SealerStats.File
	if d.sealerFile == "" {
		return
	}
	// The default file is in the package's state directory; a daemon run
	// from a checkout without it keeps the evidence in memory and says so
	// once, at start, instead of failing to write it at every interval.
	if dir := filepath.Dir(d.sealerFile); !isDir(dir) {
		d.logger.Load().Info("sealer evidence kept in memory only: its directory does not exist (create it, or set arc.sealer_stats.file)", "file", d.sealerFile)
		d.sealerFile = ""
		return
	}
	list, _, err := engine.LoadSealers(d.sealerFile)
	switch {
	case err == nil:
		d.sealers.Restore(list)
	case errors.Is(err, fs.ErrNotExist):
	default:
		d.logger.Load().Warn("sealer evidence not restored; starting afresh", "file", d.sealerFile, "err", err)
	}
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// keepSealers writes the sealer state file every interval and once more
// when ctx ends. A failure is logged once, and again only after a success.
func (d *daemon) keepSealers(ctx context.Context, interval time.Duration) {
	if d.sealerFile == "" {
		return
	}
	failing := false
	save := func() {
		err := d.sealers.Save(d.sealerFile)
		switch {
		case err != nil && !failing:
			d.logger.Load().Warn("sealer evidence kept in memory only", "file", d.sealerFile, "err", err)
		case err == nil && failing:
			d.logger.Load().Info("sealer evidence written again", "file", d.sealerFile)
		}
		failing = err != nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			save()
		case <-ctx.Done():
			save()
			return
		}
	}
}

// runSealers implements `authmilter sealers`: the evidence the daemon kept
// on ARC sealers, to choose arc.trusted_sealers.
func runSealers(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sealers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: the embedded defaults)")
	file := fs.String("file", "", "state file (default: arc.sealer_stats.file of the configuration)")
	format := fs.String("format", "text", "output: text or json")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("sealers: unexpected argument %q", fs.Arg(0))}
	}
	if *format != "text" && *format != "json" {
		return usageError{fmt.Errorf("sealers: --format %q: want text or json", *format)}
	}
	cfg := DefaultConfig()
	if *path != "" {
		var err error
		if cfg, err = LoadConfig(*path); err != nil {
			return err
		}
	}
	if *file == "" {
		*file = cfg.ARC.SealerStats.File
	}
	if *file == "" {
		return errors.New("sealers: arc.sealer_stats.file is empty: the daemon keeps no state file (its metrics have the counts)")
	}
	list, written, err := engine.LoadSealers(*file)
	if err != nil {
		return fmt.Errorf("sealers: %w", err)
	}
	trusted := map[string]bool{}
	for _, t := range aLabels(cfg.ARC.TrustedSealers) {
		trusted[t] = true
	}
	if *format == "json" {
		type row struct {
			engine.SealerCounts
			Trusted bool `json:"trusted"`
		}
		out := struct {
			File    string    `json:"file"`
			Written time.Time `json:"written"`
			Sealers []row     `json:"sealers"`
		}{File: *file, Written: written, Sealers: []row{}}
		for _, c := range list {
			out.Sealers = append(out.Sealers, row{c, trusted[c.Domain]})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(stdout, "ARC sealers seen, from %s (written %s)\n", *file, written.Format(time.RFC3339))
	fmt.Fprintln(stdout, "would_override: DMARC failed here, the chain validated, and the sealer had recorded dmarc=pass;")
	fmt.Fprintln(stdout, "trusting the sealer (arc.trusted_sealers) would have accepted these messages.")
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SEALER\tMESSAGES\tCHAIN_PASS\tDMARC_FAIL\tUPSTREAM_DMARC_PASS\tWOULD_OVERRIDE\tLAST_SEEN\tTRUSTED\t")
	for _, c := range list {
		yes := "no"
		if trusted[c.Domain] {
			yes = "yes"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", printable(c.Domain), c.Messages, c.ChainPass, c.DMARCFail,
			c.UpstreamDMARCPass, c.WouldOverride, c.LastSeen.UTC().Format(time.RFC3339), yes)
	}
	if len(list) == 0 {
		fmt.Fprintln(tw, "(none yet)\t\t\t\t\t\t\t\t")
	}
	return tw.Flush()
}

// printable keeps a domain from a message fit for a terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}
