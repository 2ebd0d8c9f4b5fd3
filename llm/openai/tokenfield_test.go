package openai_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

// sent is what the upstream saw of one request: its token bound's field
// and its reasoning effort.
type sent struct{ field, effort string }

// sentFor returns what the upstream saw of the requests tagged tag.
func sentFor(srv *fakeai.TestServer, tag string) []sent {
	var out []sent
	for _, rec := range srv.Recorded() {
		if rec.Config.Tag == tag {
			out = append(out, sent{rec.MaxTokensField, rec.ReasoningEffort})
		}
	}
	return out
}

// TestTokenFieldRefusedAskedAgain: a model the client does not know for a
// reasoning model (an Azure deployment, a custom name) that refuses
// max_tokens with OpenAI's "use max_completion_tokens" is asked again at
// once with max_completion_tokens and the effort, and later requests for
// it are sent so from the start; a declared reasoning model whose
// upstream refuses max_completion_tokens is asked again with max_tokens
// and no effort. Other bad requests are not asked again.
func TestTokenFieldRefusedAskedAgain(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	tests := []struct {
		name, model, marker string
		declared            []string
		want                []sent // the first Stream's requests
		wantNext            sent   // the next Stream's one request
		wantEffort          bool   // SendsReasoningEffort after the first Stream
	}{
		{"reasoning model by another name", "azure-o3-prod", "refuse=max_tokens", nil,
			[]sent{{"max_tokens", ""}, {"max_completion_tokens", "low"}}, sent{"max_completion_tokens", "low"}, true},
		{"declared, upstream wants max_tokens", "old-gpt", "refuse=max_completion_tokens", []string{"old-gpt"},
			[]sent{{"max_completion_tokens", "low"}, {"max_tokens", ""}}, sent{"max_tokens", ""}, false},
		{"other bad request", "gpt-4o", "fault=400 times=1", nil,
			[]sent{{"max_tokens", ""}}, sent{"max_tokens", ""}, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(srv.URL, func(o *openai.Options) { o.ReasoningModels = tc.declared })
			tag := string(rune('A' + i))
			ask := func() error {
				req := request("[[fake tokens=3 tag=" + tag + " " + tc.marker + "]]")
				req.Model, req.MaxTokens, req.ReasoningEffort = tc.model, 64, "low"
				_, err := c.Stream(testCtx(t), req, func(string) {})
				return err
			}
			err := ask()
			if got := sentFor(srv, tag); !slices.Equal(got, tc.want) {
				t.Fatalf("requests %+v, want %+v (err %v)", got, tc.want, err)
			}
			if len(tc.want) == 2 && err != nil {
				t.Fatalf("asked again, still failed: %v", err)
			}
			if len(tc.want) == 1 && llm.KindOf(err) != llm.KindBadRequest {
				t.Fatalf("err %v, want a bad request", err)
			}
			if got := c.SendsReasoningEffort(testCtx(t), tc.model); got != tc.wantEffort {
				t.Fatalf("SendsReasoningEffort %v, want %v", got, tc.wantEffort)
			}
			_ = ask()
			if got := sentFor(srv, tag); len(got) != len(tc.want)+1 || got[len(got)-1] != tc.wantNext {
				t.Fatalf("next request %+v, want %+v", got[len(tc.want):], tc.wantNext)
			}
		})
	}
}

// TestDeclaredReasoningModels: models declared reasoning models (one by
// one, or every model with "*") get max_completion_tokens and the effort
// whatever their names; the others are judged by name.
func TestDeclaredReasoningModels(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	tests := []struct {
		name     string
		declared []string
		model    string
		want     sent
	}{
		{"declared", []string{"my-deploy", "other"}, "my-deploy", sent{"max_completion_tokens", "low"}},
		{"not declared", []string{"other"}, "my-deploy", sent{"max_tokens", ""}},
		{"every model", []string{"*"}, "qwen-thinker", sent{"max_completion_tokens", "low"}},
		{"known by name", nil, "o4-mini", sent{"max_completion_tokens", "low"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(srv.URL, func(o *openai.Options) { o.ReasoningModels = tc.declared })
			tag := "T" + string(rune('A'+i))
			req := request("[[fake tokens=3 tag=" + tag + "]]")
			req.Model, req.MaxTokens, req.ReasoningEffort = tc.model, 64, "low"
			if _, err := c.Stream(testCtx(t), req, func(string) {}); err != nil {
				t.Fatal(err)
			}
			if got := sentFor(srv, tag); len(got) != 1 || got[0] != tc.want {
				t.Fatalf("requests %+v, want %+v", got, tc.want)
			}
			if got, want := c.SendsReasoningEffort(testCtx(t), tc.model), tc.want.effort != ""; got != want {
				t.Fatalf("SendsReasoningEffort %v, want %v", got, want)
			}
		})
	}
}

// TestOtherTokenRefusalsNotAskedAgain: refusals that name the token
// fields but do not refuse the one sent (a bound too large, the wrong
// field refused) are not taken for a request to send the other field.
func TestOtherTokenRefusalsNotAskedAgain(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, model, message string }{
		{"bound too large", "gpt-4o", "max_tokens is too large: 200000. This model supports at most 16384 completion tokens, whereas you provided 200000."},
		{"completion bound invalid", "o3-mini", "Invalid 'max_completion_tokens': integer above maximum value. Expected a value <= 100000, but got 200000 instead."},
		{"the other field refused", "o3-mini", fakeai.Refusals["max_tokens"]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"error":{"message":%q,"type":"invalid_request_error","param":null,"code":null}}`, tc.message)
			}))
			t.Cleanup(srv.Close)
			req := request("hi")
			req.Model, req.MaxTokens = tc.model, 200000
			_, err := newClient(srv.URL, nil).Stream(testCtx(t), req, func(string) {})
			if llm.KindOf(err) != llm.KindBadRequest || n.Load() != 1 {
				t.Fatalf("%d requests, err %v; want one, a bad request", n.Load(), err)
			}
		})
	}
}
