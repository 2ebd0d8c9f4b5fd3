package openai_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

// TestAzureRequests checks the Azure request shape (deployment path,
// api-version, api-key header) on a real server that forwards to the fake.
func TestAzureRequests(t *testing.T) {
	t.Parallel()
	fake := fakeai.New(fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
	t.Cleanup(fake.Close)
	var mu sync.Mutex
	var seen *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Clone(r.Context())
		mu.Unlock()
		if r.URL.Path != "/openai/deployments/my-gpt4o/chat/completions" {
			http.NotFound(w, r)
			return
		}
		r.URL.Path = "/v1/chat/completions"
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := newClient(srv.URL, func(o *openai.Options) {
		o.Azure, o.AzureAPIVersion, o.APIKey = true, "2024-06-01", "azure-key"
	})
	req := request("hi")
	req.Model = "my-gpt4o"
	var r run
	r.res, r.err = c.Stream(testCtx(t), req, func(s string) { r.deltas = append(r.deltas, s) })
	if r.err != nil || r.text() != fakeai.ExpectedText(fakeai.Config{Tokens: 3}) {
		t.Fatalf("err %v text %q", r.err, r.text())
	}
	mu.Lock()
	defer mu.Unlock()
	if seen.URL.Query().Get("api-version") != "2024-06-01" || seen.Header.Get("api-key") != "azure-key" ||
		seen.Header.Get("Authorization") != "" {
		t.Fatalf("request %s %v", seen.URL, seen.Header)
	}
}

// TestAzureDeploymentNames: a model with a deployment given
// (Options.AzureDeployments) is requested under that name exactly, one
// path segment, '.' and ':' kept; one without is requested as go-openai's
// default mapper (v1.43.0, and so chatd's earlier releases) named it,
// ':' removed and '.' too from an id holding "3.5", so that an upstream
// whose gpt-3.5-turbo is Azure's usual gpt-35-turbo deployment keeps
// working. Any name can be sent: escaped, where go-openai sent a space or
// a '%' raw and the request could not be built.
func TestAzureDeploymentNames(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
	given := map[string]string{"gpt-3.5-turbo-16k": "gpt-3.5-turbo-16k", "chat": "my:dep", "odd": "a b%c"}
	c := newClient(srv.HTTP.URL, func(o *openai.Options) {
		o.Azure, o.APIKey, o.AzureDeployments = true, "azure-key", given
	})
	given["chat"] = "changed" // the client keeps its own copy
	tests := []struct{ model, deployment string }{
		// Without a deployment: the legacy mapping.
		{"gpt-4.1", "gpt-4.1"},
		{"gpt-3.5-turbo", "gpt-35-turbo"},
		{"gpt-3.5:turbo", "gpt-35turbo"},
		{"my:dep", "mydep"},
		{"o4-mini_2025.04", "o4-mini_2025.04"},
		{"x y%z", "x y%z"},
		// With one: as given.
		{"gpt-3.5-turbo-16k", "gpt-3.5-turbo-16k"},
		{"chat", "my:dep"},
		{"odd", "a b%c"},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			req := request("hi")
			req.Model = tc.model
			if _, err := c.Stream(testCtx(t), req, func(string) {}); err != nil {
				t.Fatal(err)
			}
			rec, _ := srv.LastRequest()
			want := "/openai/deployments/" + url.PathEscape(tc.deployment) + "/chat/completions"
			if rec.Path != want || rec.Deployment != tc.deployment || rec.Model != tc.model {
				t.Fatalf("requested path %s (deployment %q) model %q, want %s", rec.Path, rec.Deployment, rec.Model, want)
			}
		})
	}
}
