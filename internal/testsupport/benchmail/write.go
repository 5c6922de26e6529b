package benchmail

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File names WriteDir uses besides the messages.
const (
	ZoneFile      = "bench.zone"
	MixFile       = "mix.tsv"
	SealRSAFile   = "seal-rsa.pem"
	SealEdFile    = "seal-ed25519.pem"
	ConfigFile    = "authmilter.yaml"
	ConfigRSAFile = "authmilter-seal-rsa.yaml"
	ConfigEdFile  = "authmilter-seal-ed25519.yaml"
)

// WriteDir writes the corpus into dir (created if needed): NAME.eml and its
// NAME.env envelope (JSON) per message, the zone file, the mix file (one
// line per message: name, class, size, bytes and the expected verdicts),
// the receiver's sealing keys (mode 0600) and authmilter configurations
// that listen on listen and answer DNS from the zone: without sealing, and
// sealing with RSA-2048 and with Ed25519.
func (c *Corpus) WriteDir(dir, listen string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	write := func(name string, data []byte, mode os.FileMode) error {
		return os.WriteFile(filepath.Join(dir, name), data, mode)
	}
	var mix strings.Builder
	fmt.Fprintf(&mix, "# benchmail corpus, seed %d, ARC sealed by %s\n# name\tclass\tsize\tbytes\tspf\tdkim\tdmarc\tarc\taction\n", c.Seed, c.Sealer)
	for _, m := range c.Messages {
		if err := write(m.Name+".eml", m.Data, 0o644); err != nil {
			return err
		}
		env, err := json.MarshalIndent(m.Envelope, "", "  ")
		if err != nil {
			return err
		}
		if err := write(m.Name+".env", append(env, '\n'), 0o644); err != nil {
			return err
		}
		e := m.Expect
		fmt.Fprintf(&mix, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Class, m.Size, len(m.Data), e.SPF, e.DKIM, e.DMARC, e.ARC, e.Action)
	}
	if err := write(MixFile, []byte(mix.String()), 0o644); err != nil {
		return err
	}
	if err := write(ZoneFile, []byte(c.Zone), 0o644); err != nil {
		return err
	}
	for _, k := range []struct {
		file string
		key  any
	}{{SealRSAFile, c.SealRSA}, {SealEdFile, c.SealEd25519}} {
		der, err := x509.MarshalPKCS8PrivateKey(k.key)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, k.file)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return err
		}
		// WriteFile keeps the mode of an existing file: arc.LoadKey wants 0600.
		if err := os.Chmod(path, 0o600); err != nil {
			return err
		}
	}
	for _, cf := range []struct{ file, selector, key string }{
		{ConfigFile, "", ""},
		{ConfigRSAFile, SealSelectorRSA, SealRSAFile},
		{ConfigEdFile, SealSelectorEd, SealEdFile},
	} {
		if err := write(cf.file, []byte(c.config(abs, listen, cf.selector, cf.key)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// config is an authmilter configuration for the corpus.
func (c *Corpus) config(dir, listen, selector, keyFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# authmilter configuration for the benchmail corpus in %s (seed %d).\n", dir, c.Seed)
	fmt.Fprintf(&b, "listen: %s\nauthserv_id: %s\nlog:\n  level: info\n  format: text\n", listen, AuthservID)
	fmt.Fprintf(&b, "dns:\n  zone_file: %s\n", filepath.Join(dir, ZoneFile))
	b.WriteString("arc:\n")
	if selector != "" {
		fmt.Fprintf(&b, "  seal:\n    domain: %s\n    selector: %s\n    key_file: %s\n", SealDomain, selector, filepath.Join(dir, keyFile))
	}
	fmt.Fprintf(&b, "  trusted_sealers: [%s]\n", strings.Join(c.TrustedSealers, ", "))
	return b.String()
}
