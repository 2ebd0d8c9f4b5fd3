package api_test

import (
	"context"
	"strings"
	"testing"

	"chatd/llm"
	"chatd/transport/api"
)

// boundedCatalog lists "big" (at most 100 output tokens, the default) and
// "small" (at most 10).
type boundedCatalog struct{}

func (boundedCatalog) Models(context.Context) ([]llm.ModelInfo, error) {
	return []llm.ModelInfo{{ID: "big", Default: true, MaxOutputTokens: 100}, {ID: "small", MaxOutputTokens: 10}}, nil
}

// TestKeptMaxTokensAboveTheBound: a conversation switched to a model with
// a lower bound keeps its maxTokens (capped at send time), and a patch
// that sends that kept value again beside another parameter (as the web
// client does when one parameter changes) is taken; a value the patch
// changes is still checked against the model's bound. Before, changing
// the temperature alone of such a conversation was refused 400 for a
// maxTokens the user never touched.
func TestKeptMaxTokensAboveTheBound(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{Catalog: boundedCatalog{}})
	owner := e.user(t)
	for _, tc := range []struct {
		name    string
		create  string
		patches []string
		status  int // of the last patch; the ones before answer 200
	}{
		{"switched, then the temperature changed", `{"model":"big","params":{"maxTokens":50}}`,
			[]string{`{"model":"small"}`, `{"params":{"temperature":0.5,"maxTokens":50}}`}, 200},
		{"switched with the kept value in the same patch", `{"model":"big","params":{"maxTokens":50}}`,
			[]string{`{"model":"small","params":{"temperature":0.5,"maxTokens":50}}`}, 200},
		{"switched, then a changed value over the bound", `{"model":"big","params":{"maxTokens":50}}`,
			[]string{`{"model":"small"}`, `{"params":{"maxTokens":60}}`}, 400},
		{"none stored, a value over the bound", `{"model":"small"}`,
			[]string{`{"params":{"maxTokens":50}}`}, 400},
		{"the kept value over the bound of any model", `{"model":"big","params":{"maxTokens":50}}`,
			[]string{`{"params":{"maxTokens":100000000}}`}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := e.send(t, "POST", owner, "/api/conversations", tc.create)
			if a.status != 201 {
				t.Fatalf("create: %d %s", a.status, a.msg)
			}
			id := a.conv.ID
			for i, p := range tc.patches {
				a = e.send(t, "PATCH", owner, "/api/conversations/"+id, p)
				want := 200
				if i == len(tc.patches)-1 {
					want = tc.status
				}
				if a.status != want {
					t.Fatalf("patch %s: %d %s, want %d", p, a.status, a.msg, want)
				}
			}
			if tc.status == 400 {
				if !strings.Contains(a.msg, "params.maxTokens") {
					t.Fatalf("refusal %q does not name params.maxTokens", a.msg)
				}
				return
			}
			stored, err := e.store.Conversation(t.Context(), owner, id)
			if err != nil {
				t.Fatal(err)
			}
			if stored.Model != "small" || stored.Params == nil || stored.Params.MaxTokens == nil || *stored.Params.MaxTokens != 50 ||
				stored.Params.Temperature == nil || *stored.Params.Temperature != 0.5 {
				t.Fatalf("stored %q %+v, want small with maxTokens 50 and temperature 0.5", stored.Model, stored.Params)
			}
		})
	}
}
