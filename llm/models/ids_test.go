package models_test

import (
	"strings"
	"testing"

	"chatd/llm/models"
)

// TestUpstreamsFileIDClash: a file with a configured model the router
// would give no id (its name and "<upstream>/<name>" both earlier models'
// ids: OpenRouter's "openai/gpt-4o" listed before upstream openai) is
// refused, naming the clash and the fix. Before, the model was left out
// of GET /api/models without a word, and its documented id reached
// OpenRouter. Renaming the upstream, or serving the model once, is
// accepted.
func TestUpstreamsFileIDClash(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file string
		want       string // "": accepted
	}{
		{"clash", `
upstreams:
  - {name: openrouter, baseURL: http://r/v1, models: [openai/gpt-4o]}
  - {name: azure, baseURL: http://a/v1, models: [gpt-4o]}
  - {name: openai, baseURL: http://o/v1, models: [gpt-4o]}
`, `upstream "openai"'s model "gpt-4o" gets no id: "gpt-4o" is the id of upstream "azure"'s model "gpt-4o" and "openai/gpt-4o" that of upstream "openrouter"'s model "openai/gpt-4o"; give upstream "openai" another name`},
		{"upstream renamed", `
upstreams:
  - {name: openrouter, baseURL: http://r/v1, models: [openai/gpt-4o]}
  - {name: azure, baseURL: http://a/v1, models: [gpt-4o]}
  - {name: openai-direct, baseURL: http://o/v1, models: [gpt-4o]}
`, ""},
		{"no second gpt-4o", `
upstreams:
  - {name: openrouter, baseURL: http://r/v1, models: [openai/gpt-4o]}
  - {name: openai, baseURL: http://o/v1, models: [gpt-4o]}
`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := models.Parse([]byte(tc.file), ".yaml", env)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
