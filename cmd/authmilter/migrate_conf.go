package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// confEntry is one setting of an OpenDKIM, OpenDMARC or OpenARC
// configuration file: "Name value", the name matched without regard to
// case.
type confEntry struct {
	Name  string // as written
	Value string
	Where string // file:line
}

// maxIncludes is the nesting the three milters allow for Include.
const maxIncludes = 5

// readConf reads a configuration file in the format the three milters
// share (opendkim.conf(5), opendmarc.conf(5), openarc.conf(5)): blank
// lines ignored, a '#' ends the line, then a parameter name, white space,
// and the value; Include names another file read in its place.
func readConf(path string) ([]confEntry, error) {
	return readConfDepth(path, 0)
}

func readConfDepth(path string, depth int) ([]confEntry, error) {
	if depth > maxIncludes {
		return nil, fmt.Errorf("%s: Include nested more than %d deep", path, maxIncludes)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []confEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			name, value = line[:i], strings.TrimSpace(line[i+1:])
		}
		where := fmt.Sprintf("%s:%d", filepath.Base(path), n)
		if strings.EqualFold(name, "Include") {
			inc := value
			if !filepath.IsAbs(inc) {
				inc = filepath.Join(filepath.Dir(path), inc)
			}
			more, err := readConfDepth(inc, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: Include: %w", where, err)
			}
			out = append(out, more...)
			continue
		}
		out = append(out, confEntry{Name: name, Value: value, Where: where})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// confBool reads a Boolean the way the three milters do: only the first
// byte counts, T t Y y 1 for true and F f N n 0 for false.
func confBool(v string) (bool, error) {
	if v != "" {
		switch v[0] {
		case 'T', 't', 'Y', 'y', '1':
			return true, nil
		case 'F', 'f', 'N', 'n', '0':
			return false, nil
		}
	}
	return false, fmt.Errorf("%q is not a Boolean (yes/no, true/false, 1/0)", v)
}

// dataset reads a dataset value (opendkim.conf(5) "DATA SETS"):
// "file:PATH" or an absolute path names a file with one entry per line
// ('#' comments); "csl:a,b" or a bare value is a comma-separated list.
// "refile:" (regular expressions) and database back ends are refused:
// authmilter lists are plain.
func dataset(v string) ([]string, error) {
	kind, rest, found := strings.Cut(v, ":")
	switch {
	case strings.HasPrefix(v, "/"):
		return listFile(v)
	case found && kind == "file":
		return listFile(rest)
	case found && kind == "csl":
		return splitList(rest), nil
	case found && (kind == "refile" || kind == "db" || kind == "dsn" || kind == "ldap" || kind == "ldapi" || kind == "ldaps" ||
		kind == "lua" || kind == "memcache" || kind == "redis" || kind == "mdb" || kind == "erlang" || kind == "socket"):
		return nil, fmt.Errorf("%s: data sets are not translated; list the entries by hand", kind)
	}
	return splitList(v), nil
}

// listFile reads one entry per line.
func listFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, f := range strings.Fields(line) {
			out = append(out, f)
		}
	}
	return out, nil
}

// splitList splits a comma- or space-separated list.
func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}
