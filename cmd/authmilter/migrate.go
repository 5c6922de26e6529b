package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/authmilter/authmilter/milter"
)

// runMigrate implements `authmilter migrate`: an authmilter configuration
// equivalent to OpenDKIM, OpenDMARC and OpenARC configuration files,
// printed on stdout. Every translated setting carries a comment naming the
// original; every setting without an equivalent is listed at the top with
// the reason.
func runMigrate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var paths [3]string
	fs.StringVar(&paths[0], "opendkim", "", "opendkim.conf to translate")
	fs.StringVar(&paths[1], "opendmarc", "", "opendmarc.conf to translate")
	fs.StringVar(&paths[2], "openarc", "", "openarc.conf to translate")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("migrate: unexpected argument %q", fs.Arg(0))}
	}
	if paths == [3]string{} {
		return usageError{errors.New("migrate: give at least one of --opendkim, --opendmarc, --openarc")}
	}
	var m migration
	for i, kind := range []string{"opendkim", "opendmarc", "openarc"} {
		if paths[i] == "" {
			continue
		}
		entries, err := readConf(paths[i])
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		m.files = append(m.files, paths[i])
		m.add(kind, entries)
	}
	_, err := io.WriteString(stdout, m.render())
	return err
}

// setting is one authmilter key with its value and where it came from.
type setting struct {
	path  []string // e.g. policy, ignore_rcpt
	value any      // string, bool, []string, or []map for key lists
	from  []string // "opendmarc.conf:12 IgnoreMailTo postmaster@example.com"
	note  string   // what changes, if anything
}

// migration gathers the translation of the files given.
type migration struct {
	files    []string
	settings []*setting
	skipped  []string // "opendkim.conf:3 UserID opendkim: reason"
	// What several settings feed: lists merged, and the signing and
	// sealing facts read apart and decided at the end.
	internal, ignoreFrom, ignoreRcpt, allow []string
	internalFrom, ignoreFromFrom            []string
	ignoreRcptFrom, allowFrom               []string
	dkim, arc                               map[string]confEntry // lower-case name → entry
	// dmarcFile is the OpenDMARC file's name when one is given; dmarcSeen
	// the lower-case names it set.
	dmarcFile string
	dmarcSeen map[string]bool
}

func origin(e confEntry) string {
	return e.Where + " " + e.Name + " " + e.Value
}

func (m *migration) skip(e confEntry, why string) {
	m.skipped = append(m.skipped, origin(e)+": "+why)
}

// set records a setting; a second source for the same key is noted.
func (m *migration) set(e confEntry, value any, note string, path ...string) {
	for _, s := range m.settings {
		if reflect.DeepEqual(s.path, path) {
			if !reflect.DeepEqual(s.value, value) {
				m.skip(e, "conflicts with "+s.from[0]+", which is used: authmilter has one "+strings.Join(path, "."))
				return
			}
			s.from = append(s.from, origin(e))
			return
		}
	}
	m.settings = append(m.settings, &setting{path: path, value: value, from: []string{origin(e)}, note: note})
}

// Reasons shared by several settings.
const (
	whyService = "the service manager's job: the systemd unit sets the user, umask, restarts and logging (journal); authmilter runs in the foreground"
	whySPF     = "authmilter always evaluates SPF itself and never takes results from other Authentication-Results fields"
	whyFixed   = "fixed in authmilter"
)

// add translates the entries of one file.
func (m *migration) add(kind string, entries []confEntry) {
	if m.dkim == nil {
		m.dkim, m.arc, m.dmarcSeen = map[string]confEntry{}, map[string]confEntry{}, map[string]bool{}
	}
	if kind == "opendmarc" {
		m.dmarcFile = "opendmarc.conf"
		if len(entries) > 0 {
			m.dmarcFile = strings.SplitN(entries[0].Where, ":", 2)[0]
		}
	}
	for _, e := range entries {
		name := strings.ToLower(e.Name)
		switch name {
		case "socket":
			m.socket(e)
			continue
		case "authservid":
			if e.Value == "HOSTNAME" {
				m.skip(e, "authmilter's authserv_id defaults to the host name")
			} else {
				m.set(e, e.Value, "", "authserv_id")
			}
			continue
		case "internalhosts", "ignorehosts":
			m.hosts(e)
			continue
		case "userid", "umask", "pidfile", "syslog", "syslogfacility", "syslogsuccess", "background", "autorestart",
			"autorestartcount", "autorestartrate", "basedirectory", "changerootdirectory", "enablecoredumps",
			"milterdebug", "temporarydirectory", "logwhy", "logresults", "softwareheader":
			m.skip(e, whyService)
			continue
		}
		switch kind {
		case "opendkim":
			m.addDKIM(name, e)
		case "opendmarc":
			m.dmarcSeen[name] = true
			m.addDMARC(name, e)
		case "openarc":
			m.addARC(name, e)
		}
	}
}

func (m *migration) addDKIM(name string, e confEntry) {
	switch name {
	case "mode", "domain", "selector", "keyfile", "keytable", "signingtable", "oversignheaders", "signheaders":
		m.dkim[name] = e
	case "nameservers":
		servers := splitList(e.Value)
		m.set(e, servers, "", "dns", "servers")
	case "dnstimeout":
		if n, err := strconv.Atoi(e.Value); err == nil && n > 0 {
			m.set(e, (time.Duration(n) * time.Second).String(), "one exchange with one server in authmilter (dns.attempts rounds), the whole lookup in OpenDKIM", "dns", "timeout")
		} else {
			m.skip(e, "not a number of seconds")
		}
	case "canonicalization":
		m.skip(e, "authmilter signs with relaxed/relaxed, the canonicalization that survives relays best")
	case "on-badsignature", "on-default", "on-dnserror", "on-internalerror", "on-keynotfound", "on-nosignature", "on-security", "on-signatureerror":
		m.skip(e, "authmilter never rejects for DKIM alone: a failed signature counts in DMARC, whose policy decides")
	case "alwaysaddarheader", "addallsignatureresults":
		m.skip(e, whyFixed+": every signature's result is always in Authentication-Results")
	case "minimumkeybits", "requiresafekeys", "allowsha1only":
		m.skip(e, whyFixed+": RSA keys under 1024 bits and rsa-sha1 fail (RFC 8301)")
	case "trustanchorfile", "resolverconfiguration":
		m.skip(e, "set dns.servers to a validating resolver and dns.trust_ad: true")
	default:
		m.skip(e, "no equivalent in authmilter")
	}
}

func (m *migration) addDMARC(name string, e confEntry) {
	boolean := func() (bool, bool) {
		b, err := confBool(e.Value)
		if err != nil {
			m.skip(e, err.Error())
			return false, false
		}
		return b, true
	}
	switch name {
	case "rejectfailures":
		if b, ok := boolean(); ok {
			note := ""
			if !b {
				note = "OpenDMARC's default: failures only noted; in authmilter this also turns off the hold of quarantined mail"
			}
			m.set(e, b, note, "policy", "enforce")
		}
	case "holdquarantinedmessages":
		if b, ok := boolean(); ok {
			q := "header"
			if b {
				q = "hold"
			}
			m.set(e, q, "", "policy", "quarantine")
		}
	case "requiredheaders", "rejectmultivaluefrom":
		if b, ok := boolean(); ok && b {
			note := "authmilter checks the From field: none, several, several addresses, no domain"
			m.set(e, "reject", note, "policy", "from_checks")
		} else if ok {
			m.skip(e, "off, as authmilter's policy.from_checks by default")
		}
	case "ignoremailfrom":
		m.ignoreFrom = append(m.ignoreFrom, splitList(e.Value)...)
		m.ignoreFromFrom = append(m.ignoreFromFrom, origin(e))
	case "ignoremailto":
		m.ignoreRcpt = append(m.ignoreRcpt, splitList(e.Value)...)
		m.ignoreRcptFrom = append(m.ignoreRcptFrom, origin(e))
	case "domainwhitelist", "domainwhitelistfile":
		list := splitList(e.Value)
		if name == "domainwhitelistfile" {
			var err error
			if list, err = listFile(e.Value); err != nil {
				m.skip(e, "cannot read it ("+err.Error()+"): list its domains under policy.allow_domains")
				return
			}
		}
		m.allow = append(m.allow, list...)
		m.allowFrom = append(m.allowFrom, origin(e))
	case "spfselfvalidate", "spfignoreresults", "trustedauthservids":
		m.skip(e, whySPF)
	case "ignoreauthenticatedclients":
		m.skip(e, whyFixed+": authenticated submissions are never judged")
	case "failurereports", "failurereportsbcc", "failurereportsonnone", "failurereportssentby", "copyfailuresto":
		m.skip(e, "authmilter sends no failure (ruf) reports: they carry message content to third parties")
	case "historyfile":
		m.set(e, true, "OpenDMARC's history file fed opendmarc-import and opendmarc-reports; authmilter keeps the report data itself", "reports", "enabled")
		m.set(e, "sqlite:/var/lib/authmilter/reports.db", "", "reports", "store")
	case "reportcommand", "recordallmessages":
		m.skip(e, "aggregate reports are sent by authmilter itself (reports section)")
	case "publicsuffixlist":
		m.set(e, "psl", "RFC 7489 Organizational Domains from authmilter's built-in public suffix list; treewalk (RFC 9989) needs no list", "dmarc", "org_domain")
	case "dnstimeout":
		if n, err := strconv.Atoi(e.Value); err == nil && n > 0 {
			m.set(e, (time.Duration(n) * time.Second).String(), "", "dns", "timeout")
		} else {
			m.skip(e, "not a number of seconds")
		}
	default:
		m.skip(e, "no equivalent in authmilter")
	}
}

func (m *migration) addARC(name string, e confEntry) {
	switch name {
	case "mode", "domain", "selector", "keyfile", "finalreceiver", "signheaders":
		m.arc[name] = e
	case "canonicalization", "signaturealgorithm":
		m.skip(e, "authmilter seals with relaxed/relaxed and the key's algorithm (RSA: rsa-sha256, Ed25519: ed25519-sha256)")
	case "peerlist":
		m.skip(e, "authmilter judges every client outside policy.internal_networks; list peers there to skip them")
	default:
		m.skip(e, "no equivalent in authmilter")
	}
}

// socket translates the three milters' socket notation.
func (m *migration) socket(e confEntry) {
	v := e.Value
	if kind, rest, ok := strings.Cut(v, ":"); ok && (kind == "inet" || kind == "inet6") && !strings.Contains(rest, "@") {
		any := "0.0.0.0"
		if kind == "inet6" {
			any = "[::]"
		}
		v = v + "@" + any
	}
	if _, _, err := milter.ParseListen(v); err != nil {
		m.skip(e, err.Error())
		return
	}
	m.set(e, v, "one authmilter replaces the milters: Postfix's smtpd_milters lists this address only", "listen")
}

// hosts turns InternalHosts and IgnoreHosts into internal networks: the
// addresses and CIDR blocks; host and domain names cannot be.
func (m *migration) hosts(e confEntry) {
	list, err := dataset(e.Value)
	if err != nil {
		m.skip(e, err.Error())
		return
	}
	var names []string
	for _, h := range list {
		if strings.HasPrefix(h, "!") {
			names = append(names, h)
			continue
		}
		if p, err := parsePrefix(strings.Trim(h, "[]")); err == nil {
			m.internal = append(m.internal, p.String())
		} else {
			names = append(names, h)
		}
	}
	m.internalFrom = append(m.internalFrom, origin(e))
	if len(names) > 0 {
		m.skipped = append(m.skipped, e.Where+" "+e.Name+": "+strings.Join(names, ", ")+
			": authmilter matches networks only (and no exclusions): add their addresses to policy.internal_networks")
	}
}

// finish decides what several entries feed: the merged lists, DKIM
// signing and ARC sealing.
func (m *migration) finish() {
	list := func(path []string, values, from []string, note string) {
		if len(from) == 0 {
			return
		}
		values = dedupe(values)
		m.settings = append(m.settings, &setting{path: path, value: values, from: from, note: note})
	}
	// OpenDMARC's defaults differ from authmilter's: failures are only
	// noted, quarantined mail is not held (opendmarc.conf(5)).
	if m.dmarcFile != "" {
		if !m.dmarcSeen["rejectfailures"] {
			m.settings = append(m.settings, &setting{path: []string{"policy", "enforce"}, value: false,
				from: []string{m.dmarcFile + ": RejectFailures not set, false by default"}, note: "failures are only noted in Authentication-Results"})
		}
		if !m.dmarcSeen["holdquarantinedmessages"] {
			m.settings = append(m.settings, &setting{path: []string{"policy", "quarantine"}, value: "header",
				from: []string{m.dmarcFile + ": HoldQuarantinedMessages not set, false by default"}})
		}
	}
	list([]string{"policy", "internal_networks"}, m.internal, m.internalFrom, "not judged, like authenticated submissions")
	list([]string{"policy", "ignore_mail_from"}, m.ignoreFrom, m.ignoreFromFrom, "")
	list([]string{"policy", "ignore_rcpt"}, m.ignoreRcpt, m.ignoreRcptFrom, "never rejected; a message for these and others too is quarantined instead")
	list([]string{"policy", "allow_domains"}, m.allow, m.allowFrom, "")
	m.finishDKIM()
	m.finishARC()
}

func (m *migration) finishDKIM() {
	mode, hasMode := m.dkim["mode"]
	signs := !hasMode || strings.Contains(mode.Value, "s")
	var from []string
	for _, k := range []string{"mode", "domain", "selector", "keyfile", "keytable", "signingtable", "oversignheaders", "signheaders"} {
		if e, ok := m.dkim[k]; ok {
			from = append(from, origin(e))
		}
	}
	if hasMode && !strings.Contains(mode.Value, "v") {
		m.skip(mode, "authmilter always verifies arriving mail")
	}
	if !signs {
		for _, k := range []string{"domain", "selector", "keyfile", "keytable", "signingtable", "oversignheaders", "signheaders"} {
			if e, ok := m.dkim[k]; ok {
				m.skip(e, "Mode has no s: nothing was signed")
			}
		}
		return
	}
	if kt, ok := m.dkim["keytable"]; ok {
		m.settings = append(m.settings,
			&setting{path: []string{"dkim", "sign", "opendkim_key_table"}, value: kt.Value, from: from, note: "read unchanged"})
		if st, ok := m.dkim["signingtable"]; ok {
			m.settings = append(m.settings, &setting{path: []string{"dkim", "sign", "opendkim_signing_table"}, value: st.Value, from: []string{origin(st)}})
		}
	} else if d, s, k := m.dkim["domain"], m.dkim["selector"], m.dkim["keyfile"]; d.Value != "" && s.Value != "" && k.Value != "" {
		var keys []map[string]string
		for _, dom := range splitList(d.Value) {
			keys = append(keys, map[string]string{"domain": dom, "selector": s.Value, "key_file": k.Value})
		}
		m.settings = append(m.settings, &setting{path: []string{"dkim", "sign", "keys"}, value: keys, from: from})
	}
	for _, k := range []string{"oversignheaders", "signheaders"} {
		if e, ok := m.dkim[k]; ok {
			key := map[string]string{"oversignheaders": "oversign", "signheaders": "headers"}[k]
			m.settings = append(m.settings, &setting{path: []string{"dkim", "sign", key}, value: splitList(e.Value), from: []string{origin(e)}})
		}
	}
}

func (m *migration) finishARC() {
	mode, hasMode := m.arc["mode"]
	final := false
	if e, ok := m.arc["finalreceiver"]; ok {
		final, _ = confBool(e.Value)
		if final {
			m.skip(e, "mail ends here: authmilter validates every chain and seals only with arc.seal set, which is left out")
		} else {
			m.skip(e, "authmilter seals when arc.seal is set")
		}
	}
	d, s, k := m.arc["domain"], m.arc["selector"], m.arc["keyfile"]
	if d.Value == "" && s.Value == "" && k.Value == "" {
		return
	}
	if (hasMode && !strings.Contains(mode.Value, "s")) || final {
		for _, e := range []confEntry{d, s, k} {
			if e.Value != "" {
				m.skip(e, "not sealing (Mode without s, or FinalReceiver)")
			}
		}
		return
	}
	from := []string{}
	for _, e := range []confEntry{mode, d, s, k} {
		if e.Value != "" {
			from = append(from, origin(e))
		}
	}
	note := "authmilter seals the mail it judges and, with policy.seal_internal, internal mail too"
	m.settings = append(m.settings,
		&setting{path: []string{"arc", "seal", "domain"}, value: d.Value, from: from, note: note},
		&setting{path: []string{"arc", "seal", "selector"}, value: s.Value},
		&setting{path: []string{"arc", "seal", "key_file"}, value: k.Value, note: "a PEM key readable by the authmilter user only"})
	if e, ok := m.arc["signheaders"]; ok {
		m.settings = append(m.settings, &setting{path: []string{"arc", "seal", "headers"}, value: splitList(e.Value), from: []string{origin(e)}})
	}
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, s := range list {
		k := strings.ToLower(s)
		if !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}

// sectionOrder is the order of the sections in configs/authmilter.yaml.
var sectionOrder = []string{"listen", "authserv_id", "log", "metrics", "dns", "spf", "dkim", "dmarc", "arc", "policy", "reports", "limits", "threads"}

// render writes the YAML: the header comment with the settings left out,
// then the sections, each key after the comments naming its originals.
// Keys this build of authmilter does not know (features landing later) are
// written commented out, so that the file still loads.
func (m *migration) render() string {
	m.finish()
	var b strings.Builder
	b.WriteString("# authmilter configuration translated by `authmilter migrate` from\n")
	for _, f := range m.files {
		b.WriteString("#   " + f + "\n")
	}
	b.WriteString("# Keys not written keep authmilter's defaults (configs/authmilter.yaml).\n#\n")
	if len(m.skipped) == 0 {
		b.WriteString("# Every setting was translated.\n")
	} else {
		b.WriteString("# Not translated:\n")
		for _, s := range m.skipped {
			b.WriteString("#   " + s + "\n")
		}
	}
	rank := map[string]int{}
	for i, s := range sectionOrder {
		rank[s] = i
	}
	sort.SliceStable(m.settings, func(i, j int) bool { return rank[m.settings[i].path[0]] < rank[m.settings[j].path[0]] })
	// A section is written live when some key in it is known to this
	// build; otherwise it is commented out with its keys.
	live := map[string]bool{}
	for _, s := range m.settings {
		if knownKey(s.path...) {
			for i := range s.path {
				live[strings.Join(s.path[:i+1], ".")] = true
			}
		}
	}
	var open []string // the section path written so far
	var openKnown []bool
	for _, s := range m.settings {
		parents := s.path[:len(s.path)-1]
		common := 0
		for common < len(open) && common < len(parents) && open[common] == parents[common] {
			common++
		}
		open, openKnown = open[:common], openKnown[:common]
		if common == 0 {
			b.WriteString("\n")
		}
		for i := common; i < len(parents); i++ {
			known := live[strings.Join(s.path[:i+1], ".")]
			if !known && (i == 0 || openKnown[i-1]) {
				b.WriteString(indent(i) + "# " + firstUnknown(s.path) + " is not known to this build of authmilter yet: written commented out\n")
			}
			b.WriteString(prefix(known) + indent(i) + parents[i] + ":\n")
			open, openKnown = append(open, parents[i]), append(openKnown, known)
		}
		depth := len(parents)
		known := live[strings.Join(s.path, ".")]
		for _, f := range s.from {
			b.WriteString(indent(depth) + "# " + f + "\n")
		}
		if s.note != "" {
			b.WriteString(indent(depth) + "# " + s.note + "\n")
		}
		for _, line := range strings.Split(strings.TrimSuffix(yamlValue(s.path[len(s.path)-1], s.value), "\n"), "\n") {
			b.WriteString(prefix(known) + indent(depth) + line + "\n")
		}
	}
	return b.String()
}

// firstUnknown names the shortest prefix of path this build lacks.
func firstUnknown(path []string) string {
	for i := range path {
		if !knownKey(path[:i+1]...) {
			return strings.Join(path[:i+1], ".")
		}
	}
	return strings.Join(path, ".")
}

func indent(n int) string { return strings.Repeat("  ", n) }

func prefix(known bool) string {
	if known {
		return ""
	}
	return "# "
}

// yamlValue renders "key: value" with yaml's quoting; lists of scalars in
// flow style.
func yamlValue(key string, v any) string {
	if list, ok := v.([]string); ok {
		parts := make([]string, len(list))
		for i, s := range list {
			// Flow style is stricter than block style: quote anything
			// but plain words.
			if s == "" || strings.ContainsAny(s, ":,[]{}#&*!|>'\"%@` \\") || strings.TrimSuffix(mustYAML(s), "\n") != s {
				parts[i] = strconv.Quote(s)
			} else {
				parts[i] = s
			}
		}
		return key + ": [" + strings.Join(parts, ", ") + "]\n"
	}
	out := mustYAML(map[string]any{key: v})
	return out
}

func mustYAML(v any) string {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		panic(err) // strings, bools and maps of strings always marshal
	}
	return b.String()
}

// knownKey reports whether this build's Config has the key at path.
func knownKey(path ...string) bool {
	t := reflect.TypeOf(Config{})
	for _, name := range path {
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return false
		}
		found := false
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if strings.Split(f.Tag.Get("yaml"), ",")[0] == name {
				t, found = f.Type, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
