package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestStartLogNamesTheModel: the start-up log names the build (version
// and revision) and says which model answers,
// the demo or each upstream with its base URL (no key, no credentials, no
// secret query value) and models; production on the demo model warns.
func TestStartLogNamesTheModel(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("k", 32)
	file := filepath.Join(t.TempDir(), "upstreams.yaml")
	if err := os.WriteFile(file, []byte("upstreams:\n"+
		"  - {name: local, baseURL: http://localhost:11434/v1, models: [llama3, qwen]}\n"+
		"  - {name: cloud, baseURL: \"https://u:hunter2@api.example/v1?api-key=sk-query-secret\", apiKey: sk-file-secret, discover: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		env   map[string]string
		model map[string]any // the start line's "model" attribute
		warn  bool           // a warning that production serves the demo model
	}{{
		name:  "development demo",
		env:   map[string]string{},
		model: map[string]any{"source": "demo"},
	}, {
		name:  "production demo",
		env:   map[string]string{"CHATD_ENV": "production", "JWT_SECRET": secret},
		model: map[string]any{"source": "demo"},
		warn:  true,
	}, {
		name: "production, OPENAI_*",
		env: map[string]string{"CHATD_ENV": "production", "JWT_SECRET": secret, "OPENAI_API_KEY": "sk-env-secret",
			"OPENAI_BASE_URL": "https://user:pw-secret@llm.example/v1", "OPENAI_MODELS": "gpt-a,gpt-b"},
		model: map[string]any{"source": "environment", "upstreams": []any{map[string]any{
			"name": "openai", "base_url": "https://xxxxx@llm.example/v1", "models": []any{"gpt-a", "gpt-b"}, "discover": false}}},
	}, {
		name: "upstreams file",
		env:  map[string]string{"CHATD_UPSTREAMS_FILE": file},
		model: map[string]any{"source": file, "upstreams": []any{
			map[string]any{"name": "local", "base_url": "http://localhost:11434/v1", "models": []any{"llama3", "qwen"}, "discover": false},
			map[string]any{"name": "cloud", "base_url": "https://xxxxx@api.example/v1?api-key=xxxxx", "models": []any{}, "discover": true}}},
	}}
	build := buildInfo{Version: "v0.0.0-20261207071902-49f64b9264c7", Revision: "49f64b9264c7145abc7a40e0d441d52b299b4f37", GoVersion: "go1.26.8"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadConfig(envOf(c.env))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			logStart(cfg, "127.0.0.1:8080", build, slog.New(slog.NewJSONHandler(&out, nil)))
			for _, s := range []string{"secret", "hunter2"} {
				if strings.Contains(out.String(), s) {
					t.Errorf("the start-up log holds a %s:\n%s", s, out.String())
				}
			}
			var start map[string]any
			dec := json.NewDecoder(&out)
			if err := dec.Decode(&start); err != nil || start["msg"] != "starting chatd" {
				t.Fatalf("first line %v (%v); want starting chatd", start, err)
			}
			if start["version"] != build.Version || start["revision"] != build.Revision {
				t.Errorf("version %v, revision %v; want %s, %s", start["version"], start["revision"], build.Version, build.Revision)
			}
			if !reflect.DeepEqual(start["model"], c.model) {
				t.Errorf("model %v; want %v", start["model"], c.model)
			}
			var warn map[string]any
			warned := dec.Decode(&warn) == nil
			if warned != c.warn {
				t.Fatalf("warned %v (%v); want %v", warned, warn, c.warn)
			}
			if msg, _ := warn["msg"].(string); c.warn && (warn["level"] != "WARN" || !strings.Contains(msg, "production serves the demo model")) {
				t.Errorf("warning %v", warn)
			}
		})
	}
}
