package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/llm/models"
)

// TestProbeUpstream: at start, an upstream that answers would fail with is
// reported in a line naming the setting to check (and never the key): a
// warning for one refusing connections, one with no model list there (404,
// or a web page: a base URL without its /v1), and one whose list lacks
// configured models (each named; an id without a tag is Ollama's
// id:latest); an error for a refused key (kept at CHATD_LOG_LEVEL=error:
// every answer fails until the operator acts). One that lists the models,
// or the list of one whose models are discovered, is not reported (a
// listed models/ID, as Gemini lists them, is the configured ID); nor is an
// Azure deployment's URL, which has no list of its deployments. A model
// list redirected to another server (hostname or port) is reported as
// such, and that server is not asked: the key would go there. The demo
// model asks nothing.
func TestProbeUpstream(t *testing.T) {
	t.Parallel()
	upstream := func(status int, body string) (string, *atomic.Int32) {
		var asked atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/models" && r.Header.Get("Authorization") == "Bearer sk-secret-key" {
				asked.Add(1)
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/v1", &asked
	}
	refusing := refusingURL(t)
	const list = `{"object":"list","data":[{"id":"gpt-4o-mini"},{"id":"llama3:latest"},{"id":"qwen3:8b"},{"id":7},"odd"]}`
	okURL, okAsked := upstream(http.StatusOK, list)
	keyURL, keyAsked := upstream(http.StatusUnauthorized, "")
	deniedURL, deniedAsked := upstream(http.StatusForbidden, "")
	noListURL, noListAsked := upstream(http.StatusNotFound, "404 page not found")
	pageURL, pageAsked := upstream(http.StatusOK, "<!doctype html><html>Open WebUI</html>")
	geminiURL, geminiAsked := upstream(http.StatusOK, `{"data":[{"id":"models/gemini-2.0-flash"},{"id":"models/gemini-2.5-pro"}]}`)
	azure := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(azure.Close)
	azureURL := azure.URL + "/openai/deployments/gpt4o-prod"
	otherHost, otherPort, otherAsked := redirectingUpstreams(t)
	const noList = `"msg":"model upstream has no model list at this URL: if OPENAI_BASE_URL is not where its OpenAI API is served, answers will fail ('The model provider does not know this model or endpoint'); most servers serve it under /v1 (Ollama: http://localhost:11434/v1)"`
	const redirected = `"msg":"model upstream redirected to another server: not followed, as its key and headers would go there; answers will fail ('The model provider's URL redirects to ...') until OPENAI_BASE_URL is where it leads"`
	const unlisted = `"msg":"model upstream does not list some configured models: answers with them will fail ('The model provider does not know this model or endpoint') unless it serves them unlisted; check OPENAI_MODELS"`
	env := func(base string, models ...string) Config {
		return Config{OpenAIBaseURL: base, OpenAIKey: "sk-secret-key", OpenAIModels: models}
	}
	cases := []struct {
		name  string
		cfg   Config
		want  []string // parts of the one line logged; none: nothing logged
		asked *atomic.Int32
	}{
		{"refuses connections", env(refusing),
			[]string{`"level":"WARN","msg":"model upstream unreachable: answers will fail ('Could not reach the model provider') until it answers; check OPENAI_BASE_URL and that the server runs","url":"` + refusing + `/models"`}, nil},
		{"refuses the key", env(keyURL),
			[]string{`"level":"ERROR","msg":"model upstream refused the API key: answers will fail until it accepts one; check OPENAI_API_KEY"`}, keyAsked},
		{"refuses access", env(deniedURL),
			[]string{`"level":"ERROR","msg":"model upstream refused the API key: answers will fail until it accepts one; check OPENAI_API_KEY","url":"` + deniedURL + `/models","status":403`}, deniedAsked},
		{"lists the models", env(okURL, "gpt-4o-mini", "llama3", "qwen3:8b"), nil, okAsked},
		{"lists what is discovered", env(okURL), nil, okAsked},
		{"lacks models", env(okURL, "gpt-4o-mini", "gpt-4o", "qwen3", "llama3:8b"),
			[]string{`"level":"WARN",` + unlisted + `,"url":"` + okURL + `/models","missing":"gpt-4o,qwen3,llama3:8b"`}, okAsked},
		{"no model list", env(noListURL, "llama3"),
			[]string{`"level":"WARN",` + noList + `,"url":"` + noListURL + `/models","status":404`}, noListAsked},
		{"a web page", env(pageURL, "llama3"),
			[]string{`"level":"WARN",` + noList + `,"url":"` + pageURL + `/models","status":200`}, pageAsked},
		{"Gemini's list", env(geminiURL, "gemini-2.0-flash", "models/gemini-2.5-pro"), nil, geminiAsked},
		{"Gemini's list lacks models", env(geminiURL, "gemini-2.0-flash", "gemini-9"),
			[]string{`"level":"WARN",` + unlisted + `,"url":"` + geminiURL + `/models","missing":"gemini-9"`}, geminiAsked},
		{"an Azure deployment", env(azureURL, "gpt4o-prod"), nil, nil},
		{"redirects to another host", env(otherHost, "llama3"), []string{`"level":"WARN",` + redirected + `,"url":"` + otherHost + `/models","status":302,"to":"http://localhost:`}, nil},
		{"redirects to another port", env(otherPort, "llama3"), []string{`"level":"WARN",` + redirected + `,"url":"` + otherPort + `/models","status":302,"to":"http://127.0.0.1:`}, nil},
		{"demo model", Config{OpenAIBaseURL: "https://api.openai.com/v1"}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := probeLog(t, c.cfg)
			checkProbeLog(t, got, c.want)
			if c.asked != nil && c.asked.Load() < 1 {
				t.Errorf("the upstream was not asked for its models with the key")
			}
		})
	}
	t.Cleanup(func() { // after the parallel subtests
		if n := otherAsked.Load(); n != 0 {
			t.Errorf("the server redirected to was asked %d times", n)
		}
	})
}

// redirectingUpstreams starts an upstream whose model list redirects (302)
// to another server, and returns its base URLs redirecting to that server
// by another hostname (localhost) and by another port of the same one, and
// how often that server was asked.
func redirectingUpstreams(t *testing.T) (otherHost, otherPort string, otherAsked *atomic.Int32) {
	t.Helper()
	otherAsked = new(atomic.Int32)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherAsked.Add(1)
		_, _ = w.Write([]byte(`{"data":[]}`))
	}))
	t.Cleanup(other.Close)
	_, port, _ := net.SplitHostPort(other.Listener.Addr().String())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := "localhost"
		if strings.HasPrefix(r.URL.Path, "/port/") {
			host = "127.0.0.1"
		}
		http.Redirect(w, r, "http://"+host+":"+port+"/v1/models?key=q-secret-value", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/host/v1", srv.URL + "/port/v1", otherAsked
}

// TestProbeUpstreamsFile: each upstream of CHATD_UPSTREAMS_FILE is asked
// for its model list with its key, headers and query, and reported as the
// one of OPENAI_BASE_URL is, in a line naming it and its settings in the
// file (never the query's values, which may be credentials); an Azure
// upstream (whose list is of models, not deployments) is not asked, nor
// is an Azure deployment's URL given as a plain upstream. One whose list
// redirects to another server is reported as such, and that server never
// gets its headers (an api-key header, which Go would send on).
func TestProbeUpstreamsFile(t *testing.T) {
	t.Parallel()
	var azureAsked atomic.Int32
	movedURL, _, otherAsked := redirectingUpstreams(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/azure/"):
			azureAsked.Add(1)
		case strings.HasPrefix(r.URL.Path, "/openai/deployments/"):
			http.NotFound(w, r)
		case r.URL.Path == "/models": // local: a base URL without its /v1
			http.NotFound(w, r)
		case r.URL.Path == "/v1/models" && r.Header.Get("Authorization") == "Bearer sk-secret-key" &&
			r.Header.Get("X-Title") == "chatd" && r.URL.Query().Get("code") == "q-secret/value":
			_, _ = w.Write([]byte(`{"data":[{"id":"big"}]}`))
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	file := &models.File{Upstreams: []models.UpstreamConfig{
		{Name: "local", BaseURL: srv.URL, Models: []models.ModelConfig{{ID: "llama3"}}},
		{Name: "cloud", BaseURL: srv.URL + "/v1", APIKey: "sk-secret-key", Headers: map[string]string{"X-Title": "chatd"},
			Query: map[string]string{"code": "q-secret/value"}, Models: []models.ModelConfig{{ID: "big"}, {ID: "bigger"}}},
		{Name: "wrongkey", BaseURL: srv.URL + "/v1", APIKey: "sk-other-key", Discover: true},
		{Name: "down", BaseURL: refusingURL(t), Query: map[string]string{"code": "q-secret/value"}, Discover: true},
		{Name: "azure", BaseURL: srv.URL + "/azure", Azure: true, APIKey: "k", Models: []models.ModelConfig{{ID: "gpt"}}},
		{Name: "deployment", BaseURL: srv.URL + "/openai/deployments/gpt4o-prod", Query: map[string]string{"api-version": "2024-06-01"},
			Headers: map[string]string{"api-key": "h-secret-key"}, Models: []models.ModelConfig{{ID: "gpt4o-prod"}}},
		{Name: "moved", BaseURL: movedURL, Headers: map[string]string{"api-key": "h-secret-key"}, Discover: true},
	}}
	got := probeLog(t, Config{Upstreams: file})
	checkProbeLog(t, got, []string{
		`"level":"WARN","msg":"model upstream has no model list at this URL: if its baseURL in CHATD_UPSTREAMS_FILE is not where its OpenAI API is served,`,
		`"upstream":"local","url":"` + srv.URL + `/models","status":404`,
		`"level":"WARN","msg":"model upstream does not list some configured models: answers with them will fail ('The model provider does not know this model or endpoint') unless it serves them unlisted; check its models in CHATD_UPSTREAMS_FILE","upstream":"cloud","url":"` + srv.URL + `/v1/models","missing":"bigger"`,
		`"level":"ERROR","msg":"model upstream refused the API key: answers will fail until it accepts one; check its apiKey (or apiKeyEnv) in CHATD_UPSTREAMS_FILE","upstream":"wrongkey"`,
		`"level":"WARN","msg":"model upstream unreachable: answers will fail ('Could not reach the model provider') until it answers; check its baseURL in CHATD_UPSTREAMS_FILE and that the server runs","upstream":"down"`,
		`"level":"WARN","msg":"model upstream redirected to another server: not followed, as its key and headers would go there; answers will fail ('The model provider's URL redirects to ...') until its baseURL in CHATD_UPSTREAMS_FILE is where it leads","upstream":"moved","url":"` + movedURL + `/models","status":302,"to":"http://localhost:`,
	})
	if n := strings.Count(got, "\n"); n != 5 {
		t.Errorf("%d lines logged, want 5:\n%s", n, got)
	}
	if azureAsked.Load() != 0 {
		t.Error("the Azure upstream was asked for its models")
	}
	if otherAsked.Load() != 0 {
		t.Error("the server redirected to was asked, with the upstream's headers")
	}
}

// refusingURL is a base URL where nothing listens.
func refusingURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // nothing listens there after
	return "http://" + ln.Addr().String() + "/v1"
}

// probeLog runs the probe of cfg and returns what it logged, in JSON.
func probeLog(t *testing.T, cfg Config) string {
	t.Helper()
	var logs strings.Builder
	probeUpstream(context.Background(), cfg, &http.Client{}, slog.New(slog.NewJSONHandler(&logs, nil)))
	return logs.String()
}

// checkProbeLog fails t unless got holds each of want (nothing at all when
// want is empty; one line when it has one part) and never a key.
func checkProbeLog(t *testing.T, got string, want []string) {
	t.Helper()
	if len(want) == 0 && got != "" || len(want) == 1 && strings.Count(got, "\n") != 1 {
		t.Errorf("logged %q, want %q", got, want)
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("logged %q, want %q", got, w)
		}
	}
	for _, secret := range []string{"sk-secret-key", "sk-other-key", "q-secret", "h-secret"} {
		if strings.Contains(got, secret) {
			t.Errorf("%s was logged: %s", secret, got)
		}
	}
}

// TestAzureURL: the probe leaves out Azure OpenAI's URLs, a deployment's
// or any on its hosts (whose list is not of the deployments a request
// names), and no other.
func TestAzureURL(t *testing.T) {
	t.Parallel()
	for base, want := range map[string]bool{
		"https://my-resource.openai.azure.com/openai/deployments/gpt4o-prod": true,
		"https://my-resource.openai.azure.com/openai/v1":                     true,
		"https://My-Resource.OpenAI.Azure.com.":                              true,
		"https://my-resource.cognitiveservices.azure.com/openai/v1":          true,
		"https://gateway.example.com/openai/deployments/gpt4o-prod":          true,
		"https://api.openai.com/v1":                                          false,
		"https://openrouter.ai/api/v1":                                       false,
		"https://generativelanguage.googleapis.com/v1beta/openai":            false,
		"http://localhost:11434/v1":                                          false,
	} {
		if got := azureURL(base); got != want {
			t.Errorf("azureURL(%q) = %v, want %v", base, got, want)
		}
	}
}
