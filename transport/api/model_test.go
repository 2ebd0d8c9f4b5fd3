package api_test

import (
	"context"
	"testing"

	"chatd/llm"
	"chatd/transport/api"
)

// fixedCatalog lists two models, the second the default.
type fixedCatalog struct{}

func (fixedCatalog) Models(context.Context) ([]llm.ModelInfo, error) {
	return []llm.ModelInfo{{ID: "small"}, {ID: "big", Default: true}}, nil
}

// TestEmptyModelIsTheDefault: an empty model means the default model
// (GET /api/models' default) alike in a creation and in a change: both
// store the default's id. Before, a PATCH with {"model":""} stored "",
// while a creation with it stored the default.
func TestEmptyModelIsTheDefault(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{Catalog: fixedCatalog{}})
	owner := e.user(t)
	for _, tc := range []struct {
		name, create, patch, want string
	}{
		{"created without a model", `{}`, ``, "big"},
		{"created with an empty model", `{"model":""}`, ``, "big"},
		{"changed to an empty model", `{"model":"small"}`, `{"model":""}`, "big"},
		{"changed to an empty model with params", `{"model":"small"}`, `{"model":"","params":{"maxTokens":5}}`, "big"},
		{"changed to a named model", `{}`, `{"model":"small"}`, "small"},
		{"title changed, model kept", `{"model":"small"}`, `{"title":"t"}`, "small"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := e.send(t, "POST", owner, "/api/conversations", tc.create)
			if a.status != 201 {
				t.Fatalf("create: %d %s", a.status, a.msg)
			}
			if tc.patch != "" {
				if a = e.send(t, "PATCH", owner, "/api/conversations/"+a.conv.ID, tc.patch); a.status != 200 {
					t.Fatalf("patch: %d %s", a.status, a.msg)
				}
			}
			stored, err := e.store.Conversation(t.Context(), owner, a.conv.ID)
			if err != nil {
				t.Fatal(err)
			}
			if a.conv.Model != tc.want || stored.Model != tc.want {
				t.Fatalf("model answered %q, stored %q, want %q", a.conv.Model, stored.Model, tc.want)
			}
		})
	}
}
