package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadConfigUpstreamsFile: CHATD_UPSTREAMS_FILE is read and validated
// at start (its API key taken from the environment); a bad file stops the
// start naming the variable and every problem; with a file, OPENAI_MODELS
// is not required.
func TestLoadConfigUpstreamsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "up.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	write := func(path, s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(good, "upstreams:\n  - {name: local, baseURL: http://localhost:11434/v1, apiKeyEnv: LOCAL_KEY, models: [llama3]}\n")
	write(bad, "upstreams:\n  - {name: local, baseURL: nope, models: [llama3], defaults: {topP: 0}}\n")

	c, err := loadConfig(envOf(map[string]string{"CHATD_UPSTREAMS_FILE": good, "LOCAL_KEY": "k1", "OPENAI_API_KEY": "sk-x"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Upstreams == nil || c.Upstreams.Upstreams[0].APIKey != "k1" || c.Upstreams.Upstreams[0].Models[0].ID != "llama3" {
		t.Fatalf("upstreams %+v", c.Upstreams)
	}
	_, err = loadConfig(envOf(map[string]string{"CHATD_UPSTREAMS_FILE": bad}))
	for _, want := range []string{"CHATD_UPSTREAMS_FILE", `baseURL "nope"`, "topP: must be above 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v lacks %q", err, want)
		}
	}
	_, err = loadConfig(envOf(map[string]string{"CHATD_UPSTREAMS_FILE": filepath.Join(dir, "missing.json")}))
	if err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("missing file: %v", err)
	}
}
