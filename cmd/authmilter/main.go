// Command authmilter is an inbound email authentication milter: SPF, DKIM,
// DMARC and ARC for Postfix and Sendmail.
//
//	authmilter serve [--config FILE]     run the milter
//	authmilter check [options] [FILE|-]  evaluate one message offline
//	authmilter keygen --domain D --selector S [--algorithm rsa|ed25519]
//	authmilter sealers [--config FILE]   evidence on ARC sealers seen
//	authmilter migrate [--opendkim F] [--opendmarc F] [--openarc F]
//	authmilter audit [options] DOMAIN...  check a domain's DNS records
//	authmilter version                   print the version (also --version)
//	authmilter report show|send [--config FILE]  DMARC aggregate reports
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// usageError marks errors caused by how the command was called (exit 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

var commands = map[string]func(args []string, stdout, stderr io.Writer) error{
	"keygen":  runKeygen,
	"serve":   runServe,
	"check":   runCheck,
	"audit":   runAudit,
	"sealers": runSealers,
	"migrate": runMigrate,
	"version": runVersion,
	"report":  runReport,
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" || args[0] == "-V" {
		args[0] = "version"
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "authmilter: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err := cmd(args[1:], stdout, stderr); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stderr, "authmilter: %v\n", err)
			}
			return 2
		}
		fmt.Fprintf(stderr, "authmilter: %v\n", err)
		return 1
	}
	return 0
}

const usage = `usage:
  authmilter serve [--config FILE]
        run the milter (default: inet:127.0.0.1:8895, DMARC enforced, no sealing)
  authmilter check [--config FILE] [--zone FILE] --client-ip IP --helo NAME
        --mail-from ADDR [--rcpt ADDR] [--format json|text|message] [FILE|-]
        evaluate one message exactly as the daemon would
  authmilter keygen --domain D --selector S [--algorithm rsa|ed25519] [--out FILE]
        write a private key and print the DNS TXT record to publish
  authmilter audit [--config FILE] [--zone FILE] [--dkim-selector S]...
        [--ca-file FILE] [--format text|json] DOMAIN...
        check the SPF, DKIM, DMARC, MX, MTA-STS, TLS-RPT and BIMI records of
        each domain; exit 1 when a check failed
  authmilter sealers [--config FILE] [--file FILE] [--format text|json]
        the evidence the daemon kept on ARC sealers, to choose arc.trusted_sealers
  authmilter migrate [--opendkim FILE] [--opendmarc FILE] [--openarc FILE]
        print an authmilter configuration equivalent to those files
  authmilter version
        print the version, commit and Go version of this binary (also --version)
  authmilter report show [--config FILE] [--domain D] [--open] [--format text|json|xml]
        the DMARC aggregate report data of closed periods (--open: the current one)
  authmilter report send [--config FILE]
        send every closed period's DMARC aggregate reports now (for cron)
`
