package main

import (
	"strings"
	"testing"
)

// The limits: keys reach the resolver and the engine; out-of-range values
// are errors naming the key.
func TestLimitsConfig(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte(`
limits:
  max_answer_bytes: 4096
  max_arc_instances: 10
  spf_max_lookups: 5
  spf_max_void_lookups: 1
`), "limits.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if d := dnsConfig(cfg); d.MaxAnswerBytes != 4096 {
		t.Errorf("dns MaxAnswerBytes = %d, want 4096", d.MaxAnswerBytes)
	}
	e, err := newEngine(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.ARC.MaxInstances != 10 || e.SPF.MaxLookups != 5 || e.SPF.MaxVoidLookups != 1 {
		t.Errorf("engine: arc %+v spf %+v", e.ARC, e.SPF)
	}

	def, err := newEngine(DefaultConfig(), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if def.ARC.MaxInstances != 50 || def.SPF.MaxLookups != 10 || def.SPF.MaxVoidLookups != 2 || dnsConfig(DefaultConfig()).MaxAnswerBytes != 65535 {
		t.Errorf("defaults: arc %+v spf %+v", def.ARC, def.SPF)
	}

	for _, tt := range []struct{ text, want string }{
		{"limits:\n  max_answer_bytes: 100\n", "limits.max_answer_bytes 100"},
		{"limits:\n  max_answer_bytes: 70000\n", "limits.max_answer_bytes 70000"},
		{"limits:\n  max_arc_instances: 51\n", "limits.max_arc_instances 51"},
		{"limits:\n  max_arc_instances: 0\n", "limits.max_arc_instances 0"},
		{"limits:\n  spf_max_lookups: 11\n", "limits.spf_max_lookups 11"},
		{"limits:\n  spf_max_void_lookups: 0\n", "limits.spf_max_void_lookups 0"},
	} {
		if _, err := ParseConfig([]byte(tt.text), "cfg.yaml"); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want containing %q", tt.text, err, tt.want)
		}
	}
}
