package api_test

import (
	"log/slog"
	"strings"
	"testing"

	"chatd/llm"
	"chatd/transport/api"
)

// TestModelNamedByItsUpstream: a creation and a change may name a model
// by its upstream's name ("<upstream>/<name>", as the router's upstreams
// file promises); the model's id is stored and its bounds apply. Before,
// only exact ids were accepted (400 unknown model). Upstreams a and b
// configure "m": a's has the id "m" (and at most 10 output tokens), b's
// "b/m".
func TestModelNamedByItsUpstream(t *testing.T) {
	t.Parallel()
	router := llm.NewRouter(llm.RouterOptions{Logger: slog.New(slog.DiscardHandler), Upstreams: []llm.Upstream{
		{Name: "a", Models: []llm.ModelInfo{{ID: "m", Name: "m", MaxOutputTokens: 10}}},
		{Name: "b", Models: []llm.ModelInfo{{ID: "m", Name: "m"}}},
	}})
	t.Cleanup(router.Close)
	e := newAPIEnv(t, api.ConversationOptions{Catalog: router})
	owner := e.user(t)
	for _, tc := range []struct {
		name, create, patch string
		want                string // the model stored, else the refusal's message holds it
		status              int
	}{
		{"created by a's name", `{"model":"a/m"}`, ``, "m", 200},
		{"created by b's id", `{"model":"b/m"}`, ``, "b/m", 200},
		{"changed to a's name", `{"model":"b/m"}`, `{"model":"a/m"}`, "m", 200},
		{"a's bound applies by a's name", `{"model":"a/m","params":{"maxTokens":50}}`, ``, "params.maxTokens", 400},
		{"no such upstream", `{"model":"c/m"}`, ``, `unknown model "c/m"`, 400},
		{"changed to no such model of a", `{}`, `{"model":"a/n"}`, `unknown model "a/n"`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := e.send(t, "POST", owner, "/api/conversations", tc.create)
			if tc.patch != "" && a.status == 201 {
				a = e.send(t, "PATCH", owner, "/api/conversations/"+a.conv.ID, tc.patch)
			}
			if tc.status == 400 {
				if a.status != 400 || !strings.Contains(a.msg, tc.want) {
					t.Fatalf("%d %s, want 400 naming %s", a.status, a.msg, tc.want)
				}
				return
			}
			if a.status != 201 && a.status != 200 {
				t.Fatalf("%d %s", a.status, a.msg)
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
