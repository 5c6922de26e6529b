package main

// The man pages are written in Markdown under docs/man and turned into roff
// by go-md2man when the package is built (packaging/build-deb). These tests
// keep them complete: every configuration key (the yaml tags of Config,
// walked by reflection) must have its entry in authmilter.yaml.5.md, and
// every subcommand and each of its flags (as `authmilter CMD -h` lists
// them) its entry in authmilter.8.md. A failure says what to add where.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	manConfigPage  = filepath.Join("docs", "man", "authmilter.yaml.5.md")
	manCommandPage = filepath.Join("docs", "man", "authmilter.8.md")
	exampleConfig  = filepath.Join("configs", "authmilter.yaml")
)

// repoFile reads a file given relative to the repository root.
func repoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// configKey is one leaf of Config as the YAML file spells it.
type configKey struct {
	path string // dotted, e.g. "arc.seal.key_file"; "[]" marks a list of sections
	typ  string // the type word the man page uses
	def  string // the default, formatted as the man page writes it
}

// manDefaults are the defaults DefaultConfig computes on the machine it
// runs on, which the man page states in words.
var manDefaults = map[string]string{
	"authserv_id": "the host name",
}

// configKeys walks Config by reflection: every yaml-tagged field, nested
// sections by their dotted path, with the default from DefaultConfig.
func configKeys() []configKey {
	var keys []configKey
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "-" || !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			if strings.Contains(opts, "inline") {
				walk(prefix, fv)
				continue
			}
			if tag == "" {
				tag = strings.ToLower(f.Name)
			}
			path := prefix + tag
			ft := f.Type
			if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct {
				ft = ft.Elem()
				if fv.IsNil() {
					fv = reflect.New(ft).Elem()
				} else {
					fv = fv.Elem()
				}
			}
			switch {
			case ft.Kind() == reflect.Struct && reflect.PointerTo(ft).Implements(reflect.TypeFor[yaml.Unmarshaler]()):
				// A struct the file gives as one value (it parses itself).
				keys = append(keys, configKey{path, "value", manDefault(fv)})
			case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Duration]():
				walk(path+".", fv)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				keys = append(keys, configKey{path, "list", manDefault(fv)})
				walk(path+"[].", reflect.New(ft.Elem()).Elem())
			default:
				keys = append(keys, configKey{path, manType(ft), manDefault(fv)})
			}
		}
	}
	walk("", reflect.ValueOf(DefaultConfig()).Elem())
	for i, k := range keys {
		if d, ok := manDefaults[k.path]; ok {
			keys[i].def = d
		}
	}
	return keys
}

func manType(t reflect.Type) string {
	if t == reflect.TypeFor[time.Duration]() {
		return "duration"
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		return "list"
	case reflect.Map:
		return "map"
	}
	return t.Kind().String()
}

func manDefault(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return `""`
		}
		v = v.Elem()
	}
	if d, ok := v.Interface().(time.Duration); ok {
		s := d.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		return s
	}
	switch v.Kind() {
	case reflect.String:
		if v.String() == "" {
			return `""`
		}
		return v.String()
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range v.Len() {
			parts[i] = manDefault(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case reflect.Map:
		if v.Len() == 0 {
			return "{}"
		}
	}
	return fmt.Sprint(v.Interface())
}

// manEntry is one documented key or flag: its name, its term line and the
// "## " heading it sits under.
type manEntry struct {
	name    string
	section string
	line    int
	term    string // the whole term line
}

// manTerms returns the definition-list terms under the "# TOP" heading of
// a Markdown man page that start with **NAME** (the first group of name),
// in order.
func manTerms(text, top string, name *regexp.Regexp) []manEntry {
	var terms []manEntry
	in, section := false, ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# "):
			in, section = line == "# "+top, ""
		case !in:
		case strings.HasPrefix(line, "## "):
			section = strings.TrimSpace(strings.TrimPrefix(line, "## "))
		case strings.HasPrefix(line, "**"):
			if m := name.FindStringSubmatch(line); m != nil {
				terms = append(terms, manEntry{name: m[1], section: section, line: n, term: line})
			}
		}
	}
	return terms
}

// configSection is the "## " heading a key belongs under.
func configSection(path string) string {
	if top, _, ok := strings.Cut(path, "."); ok {
		return top
	}
	return "general"
}

func TestManPageConfigKeys(t *testing.T) {
	t.Parallel()
	text := repoFile(t, manConfigPage)
	terms := map[string]manEntry{}
	for _, e := range manTerms(text, "KEYS", regexp.MustCompile(`^\*\*([a-z0-9_.\[\]]+)\*\*`)) {
		if prev, dup := terms[e.name]; dup {
			t.Errorf("%s:%d: %s is documented twice (also line %d)", manConfigPage, e.line, e.name, prev.line)
		}
		terms[e.name] = e
	}
	termLine := regexp.MustCompile(`^\*\*[^*]+\*\* \(([^;]+); default: ([^;]+); reload: (SIGHUP|restart)\)$`)
	known := map[string]bool{}
	for _, k := range configKeys() {
		known[k.path] = true
		want := fmt.Sprintf("**%s** (%s; default: %s; reload: SIGHUP)", k.path, k.typ, k.def)
		e, ok := terms[k.path]
		if !ok {
			t.Errorf("config key %s (a yaml tag of Config in cmd/authmilter/config.go) is not in the man page source %s.\n"+
				"Add under the heading \"## %s\" of \"# KEYS\" (create the heading if it is missing) an entry:\n\n%s\n:   What it does, in a sentence or two.\n\n"+
				"(reload: SIGHUP when a reload applies it, restart when it is read at start only.) "+
				"Also give it with its default in configs/authmilter.yaml.",
				k.path, manConfigPage, configSection(k.path), want)
			continue
		}
		if e.section != configSection(k.path) {
			t.Errorf("%s:%d: %s is under \"## %s\"; move it under \"## %s\"", manConfigPage, e.line, k.path, e.section, configSection(k.path))
		}
		m := termLine.FindStringSubmatch(e.term)
		if m == nil {
			t.Errorf("%s:%d: term line %q: want the form %q (reload: SIGHUP or restart)", manConfigPage, e.line, e.term, want)
			continue
		}
		if m[1] != k.typ {
			t.Errorf("%s:%d: %s: type %q, the code's is %q", manConfigPage, e.line, k.path, m[1], k.typ)
		}
		if m[2] != k.def {
			t.Errorf("%s:%d: %s: default %q, DefaultConfig() says %q", manConfigPage, e.line, k.path, m[2], k.def)
		}
	}
	for name, e := range terms {
		if !known[name] {
			t.Errorf("%s:%d: documents the config key %s, which Config (cmd/authmilter/config.go) does not have: remove it or fix its name", manConfigPage, e.line, name)
		}
	}
}

// commandFlags returns the flags `authmilter NAME -h` lists, with the man
// page term each should have and its usage text.
func commandFlags(t *testing.T, name string) map[string][2]string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run([]string{name, "-h"}, &out, &errb); code != 0 && code != 2 {
		t.Fatalf("authmilter %s -h: exit %d: %s", name, code, errb.String())
	}
	flags := map[string][2]string{}
	flagLine := regexp.MustCompile(`^  -([^ \t]+)(?: ([^ \t]+))?`)
	last := ""
	for _, line := range strings.Split(errb.String(), "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			last = m[1]
			term := "**--" + last + "**"
			if m[2] != "" { // the flag takes a value of this type
				term += " *" + strings.ToUpper(m[2]) + "*"
			}
			flags[last] = [2]string{term, ""}
		} else if f, ok := flags[last]; ok && strings.HasPrefix(line, "    \t") {
			flags[last] = [2]string{f[0], strings.TrimSpace(f[1] + " " + strings.TrimSpace(line))}
		}
	}
	return flags
}

func TestManPageCommands(t *testing.T) {
	t.Parallel()
	text := repoFile(t, manCommandPage)
	synopsis, _, _ := strings.Cut(text, "\n# DESCRIPTION")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	documented := map[string]map[string]manEntry{} // section → flag → entry
	for _, e := range manTerms(text, "COMMANDS", regexp.MustCompile(`^\*\*--([a-z0-9-]+)\*\*`)) {
		if name, ok := strings.CutPrefix(e.section, "authmilter "); !ok || commands[name] == nil {
			t.Errorf("%s:%d: documents --%s under \"## %s\", which is not a subcommand's section (\"## authmilter NAME\")",
				manCommandPage, e.line, e.name, e.section)
			continue
		}
		if documented[e.section] == nil {
			documented[e.section] = map[string]manEntry{}
		}
		documented[e.section][e.name] = e
	}
	for _, name := range names {
		section := "authmilter " + name
		if !slices.Contains(strings.Split(text, "\n"), "## "+section) {
			t.Errorf("subcommand %q (the commands map in cmd/authmilter/main.go) has no section in %s.\n"+
				"Add a heading \"## %s\" under \"# COMMANDS\", a paragraph saying what it does, and one entry per flag:\n\n"+
				"**--FLAG** *VALUE*\n:   What it does. Default: ...\n\n"+
				"and a line \"**%s** [**--FLAG** *VALUE*]...\" to \"# SYNOPSIS\".",
				name, manCommandPage, section, section)
			continue
		}
		if !strings.Contains(synopsis, "**authmilter "+name+"**") {
			t.Errorf("%s: \"# SYNOPSIS\" lacks \"**authmilter %s**\" with its flags", manCommandPage, name)
		}
		flags := commandFlags(t, name)
		for flag, f := range flags {
			if _, ok := documented[section][flag]; !ok {
				t.Errorf("flag --%s of \"authmilter %s\" (authmilter %s -h: %q) is not documented in %s.\n"+
					"Add under the heading \"## %s\" an entry:\n\n%s\n:   What it does. Default: ...\n\n"+
					"and add it to that command's line in \"# SYNOPSIS\".",
					flag, name, name, f[1], manCommandPage, section, f[0])
			}
		}
		for flag, e := range documented[section] {
			if _, ok := flags[flag]; !ok {
				t.Errorf("%s:%d: documents --%s under \"## %s\", but authmilter %s -h does not list it: remove it or fix its name",
					manCommandPage, e.line, flag, section, name)
			}
		}
	}
}

// TestExampleConfigCoversKeys: configs/authmilter.yaml, the package's
// conffile, gives every key with its default (authserv_id, whose default is
// the host name, commented out).
func TestExampleConfigCoversKeys(t *testing.T) {
	t.Parallel()
	text := repoFile(t, exampleConfig)
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(text), &root); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(prefix, c)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := prefix + n.Content[i].Value
				present[p] = true
				walk(p+".", n.Content[i+1])
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(strings.TrimSuffix(prefix, ".")+"[].", c)
			}
		}
	}
	walk("", &root)
	for _, k := range configKeys() {
		if _, machine := manDefaults[k.path]; machine {
			if !regexp.MustCompile(`(?m)^#\s*` + regexp.QuoteMeta(k.path) + `:`).MatchString(text) {
				t.Errorf("%s: give %s commented out (\"# %s: ...\"): its default, %s, depends on the machine", exampleConfig, k.path, k.path, k.def)
			}
			continue
		}
		if !present[k.path] && !strings.Contains(k.path, "[]") {
			t.Errorf("%s lacks the key %s: add it in its section with its default, %s, and a comment saying what it does", exampleConfig, k.path, k.def)
		}
	}
}
