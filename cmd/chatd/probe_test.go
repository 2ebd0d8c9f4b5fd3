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
// or the list of one whose models are discovered, is not reported; the
// demo model asks nothing.
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
	const noList = `"msg":"model upstream has no model list at this URL: if OPENAI_BASE_URL is not where its OpenAI API is served, answers will fail ('The model provider does not know this model or endpoint'); most servers serve it under /v1 (Ollama: http://localhost:11434/v1)"`
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
}

// TestProbeUpstreamsFile: each upstream of CHATD_UPSTREAMS_FILE is asked
// for its model list with its key, headers and query, and reported as the
// one of OPENAI_BASE_URL is, in a line naming it and its settings in the
// file (never the query's values, which may be credentials); an Azure
// upstream (whose list is of models, not deployments) is
// not asked.
func TestProbeUpstreamsFile(t *testing.T) {
	t.Parallel()
	var azureAsked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/azure/"):
			azureAsked.Add(1)
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
	}}
	got := probeLog(t, Config{Upstreams: file})
	checkProbeLog(t, got, []string{
		`"level":"WARN","msg":"model upstream has no model list at this URL: if its baseURL in CHATD_UPSTREAMS_FILE is not where its OpenAI API is served,`,
		`"upstream":"local","url":"` + srv.URL + `/models","status":404`,
		`"level":"WARN","msg":"model upstream does not list some configured models: answers with them will fail ('The model provider does not know this model or endpoint') unless it serves them unlisted; check its models in CHATD_UPSTREAMS_FILE","upstream":"cloud","url":"` + srv.URL + `/v1/models","missing":"bigger"`,
		`"level":"ERROR","msg":"model upstream refused the API key: answers will fail until it accepts one; check its apiKey (or apiKeyEnv) in CHATD_UPSTREAMS_FILE","upstream":"wrongkey"`,
		`"level":"WARN","msg":"model upstream unreachable: answers will fail ('Could not reach the model provider') until it answers; check its baseURL in CHATD_UPSTREAMS_FILE and that the server runs","upstream":"down"`,
	})
	if n := strings.Count(got, "\n"); n != 4 {
		t.Errorf("%d lines logged, want 4:\n%s", n, got)
	}
	if azureAsked.Load() != 0 {
		t.Error("the Azure upstream was asked for its models")
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
	for _, secret := range []string{"sk-secret-key", "sk-other-key", "q-secret"} {
		if strings.Contains(got, secret) {
			t.Errorf("%s was logged: %s", secret, got)
		}
	}
}
