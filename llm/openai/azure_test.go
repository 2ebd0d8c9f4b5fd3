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

// TestAzureDeploymentNames: a model id is the Azure deployment's name and
// is requested under that name exactly, one path segment. go-openai's
// default Azure mapper dropped ":" from every name and "." too from a
// name holding "3.5", so a deployment named "gpt-3.5-turbo" or "my:dep"
// was asked for as "gpt35-turbo" or "mydep", which Azure does not know.
func TestAzureDeploymentNames(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
	c := newClient(srv.HTTP.URL, func(o *openai.Options) { o.Azure, o.APIKey = true, "azure-key" })
	for _, name := range []string{"gpt-4.1", "gpt-3.5-turbo", "my:dep", "o4-mini_2025.04", "a b%c"} {
		t.Run(name, func(t *testing.T) {
			req := request("hi")
			req.Model = name
			if _, err := c.Stream(testCtx(t), req, func(string) {}); err != nil {
				t.Fatal(err)
			}
			rec, _ := srv.LastRequest()
			want := "/openai/deployments/" + url.PathEscape(name) + "/chat/completions"
			if rec.Path != want || rec.Deployment != name || rec.Model != name {
				t.Fatalf("requested path %s (deployment %q) model %q, want %s", rec.Path, rec.Deployment, rec.Model, want)
			}
		})
	}
}
