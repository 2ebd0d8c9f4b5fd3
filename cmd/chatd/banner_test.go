package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrintBanner(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	upstreams := filepath.Join(dataDir, "upstreams.yaml")
	if err := os.WriteFile(upstreams, []byte("upstreams:\n"+
		"  - {name: local, baseURL: http://localhost:11434/v1, models: [llama3]}\n"+
		"  - {name: cloud, baseURL: https://u:hunter2@api.example/v1, models: [big]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      map[string]string
		terminal bool
		want     []string // lines that must appear
		never    []string
	}{{
		name:     "not a terminal: nothing",
		env:      map[string]string{"CHATD_DATA_DIR": dataDir},
		terminal: false,
	}, {
		name:     "defaults: demo model, SQLite in the data directory",
		env:      map[string]string{"CHATD_DATA_DIR": dataDir},
		terminal: true,
		want: []string{"chatd (development) is starting", "open   http://localhost:8080",
			"store  SQLite, " + filepath.Join(dataDir, "chatd.db"), "model  demo (offline",
			"data   " + dataDir + " (development JWT secret in " + filepath.Join(dataDir, "jwt-secret") + ")",
			"JSON log lines follow"},
	}, {
		name: "upstream and MongoDB: models, base URL, password hidden",
		env: map[string]string{"CHATD_DATA_DIR": dataDir, "CHATD_ADDR": "127.0.0.1:9090",
			"OPENAI_API_KEY": "sk-secret-key", "OPENAI_MODELS": "gpt-a,gpt-b", "OPENAI_MODELS_FROM_UPSTREAM": "true",
			"MONGODB_URI": "mongodb://chatd:hunter2hunter2@db1:27017/chatd", "JWT_SECRET": strings.Repeat("k", 32)},
		terminal: true,
		want: []string{"open   http://127.0.0.1:9090", "store  MongoDB, mongodb://xxxxx@db1:27017/chatd",
			"model  gpt-a, gpt-b, and what the upstream lists at https://api.openai.com/v1", "data   MongoDB\n"},
		never: []string{"hunter2", "sk-secret-key", strings.Repeat("k", 32), "jwt-secret"},
	}, {
		name:     "wildcard IPv6 address opens on localhost",
		env:      map[string]string{"CHATD_DATA_DIR": dataDir, "CHATD_ADDR": "[::]:8081"},
		terminal: true,
		want:     []string{"open   http://localhost:8081"},
	}, {
		name: "a local upstream without a key",
		env: map[string]string{"CHATD_DATA_DIR": dataDir, "OPENAI_BASE_URL": "http://localhost:11434/v1",
			"OPENAI_MODELS": "llama3"},
		terminal: true,
		want:     []string{"model  llama3 at http://localhost:11434/v1"},
	}, {
		name: "upstreams file: its upstreams, not the demo model",
		env: map[string]string{"CHATD_DATA_DIR": dataDir, "CHATD_UPSTREAMS_FILE": upstreams,
			"OPENAI_API_KEY": "sk-secret-key"},
		terminal: true,
		want:     []string{"model  local at http://localhost:11434/v1, cloud at https://xxxxx@api.example/v1 (from " + upstreams + ")"},
		never:    []string{"demo", "hunter2", "sk-secret-key"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadConfig(envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			printBanner(&out, tt.terminal, cfg)
			got := out.String()
			if !tt.terminal && got != "" {
				t.Fatalf("banner without a terminal: %q", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("banner lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tt.never {
				if strings.Contains(got, n) {
					t.Errorf("banner shows %q:\n%s", n, got)
				}
			}
		})
	}
}
