package models_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/models"
)

const yamlFile = `
default: b/shared
upstreams:
  - name: a
    label: Upstream A
    baseURL: %A%
    apiKeyEnv: A_KEY
    contextTokens: 8000
    defaults: {temperature: 0.5}
    models:
      - shared
      - id: only-a
        name: Only A
        maxOutputTokens: 512
        defaults: {topP: 0.9, maxTokens: 256}
  - name: b
    baseURL: %B%
    headers: {api-key: b-secret}
    query: {api-version: "2024-06-01"}
    timeouts: {firstToken: 5s, idle: 5s, list: 3s}
    retries: 0
    discover: true
`

const jsonFile = `{
  "default": "b/shared",
  "upstreams": [
    {"name": "a", "label": "Upstream A", "baseURL": "%A%", "apiKeyEnv": "A_KEY", "contextTokens": 8000,
     "defaults": {"temperature": 0.5},
     "models": ["shared", {"id": "only-a", "name": "Only A", "maxOutputTokens": 512, "defaults": {"topP": 0.9, "maxTokens": 256}}]},
    {"name": "b", "baseURL": "%B%", "headers": {"api-key": "b-secret"}, "query": {"api-version": "2024-06-01"},
     "timeouts": {"firstToken": "5s", "idle": "5s", "list": "3s"}, "retries": 0, "discover": true}
  ]
}`

func env(name string) string {
	if name == "A_KEY" {
		return "sk-a"
	}
	return ""
}

// writeFile writes content with the two base URLs filled in.
func writeFile(t *testing.T, name, content, a, b string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	content = strings.NewReplacer("%A%", a, "%B%", b).Replace(content)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUpstreamsFile: the same upstreams in YAML and in JSON give the same
// catalog: ids unique across upstreams (a clash is prefixed), grouped by
// upstream with labels, per-model defaults and context windows, and each
// model served by its own upstream with its key, headers and query.
func TestUpstreamsFile(t *testing.T) {
	t.Parallel()
	a := fakeai.Start(t, fakeai.Options{APIKey: "sk-a", Defaults: fakeai.Config{Tokens: 3}})
	b := fakeai.Start(t, fakeai.Options{Models: []string{"shared", "only-b", "text-embedding-3-small"}, ContextLength: 32768,
		Defaults: fakeai.Config{Tokens: 5}})
	var files []*models.File
	for _, f := range []struct{ name, content string }{{"up.yaml", yamlFile}, {"up.json", jsonFile}} {
		file, err := models.ReadFile(writeFile(t, f.name, f.content, a.URL, b.URL), env)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		files = append(files, file)
	}
	if !reflect.DeepEqual(files[0], files[1]) {
		t.Fatalf("YAML and JSON differ:\n%+v\n%+v", files[0], files[1])
	}
	r := models.New(models.Config{File: files[0], FirstListWait: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(r.Close)
	ctx := testCtx(t)
	ms, err := r.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		id, upstream, label string
		def                 bool
		ctxTokens, maxOut   int
	}
	var got []row
	for _, m := range ms {
		got = append(got, row{m.ID, m.Upstream, m.UpstreamLabel, m.Default, m.ContextTokens, m.MaxOutputTokens})
	}
	want := []row{
		{"shared", "a", "Upstream A", false, 8000, 0},
		{"only-a", "a", "Upstream A", false, 8000, 512},
		{"only-b", "b", "b", false, 32768, 0},
		{"b/shared", "b", "b", true, 32768, 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("models\n%+v\nwant\n%+v", got, want)
	}
	if d := ms[1].Defaults; *d.Temperature != 0.5 || *d.TopP != 0.9 || d.MaxTokens != 256 {
		t.Fatalf("only-a defaults %+v", d)
	}

	for _, tc := range []struct {
		id   string
		srv  *fakeai.TestServer
		want string
	}{{"shared", a, "shared"}, {"b/shared", b, "shared"}, {"a/only-a", a, "only-a"}, {"", b, "shared"}} {
		text := stream(t, r, tc.id)
		rec, _ := tc.srv.LastRequest()
		if rec.Model != tc.want || text != fakeai.ExpectedText(fakeai.Config{Tokens: rec.Config.Tokens}) {
			t.Fatalf("model %q: upstream saw %q, text %q", tc.id, rec.Model, text)
		}
		if tc.srv == b && (rec.Header.Get("api-key") != "b-secret" || rec.Query != "api-version=2024-06-01") {
			t.Fatalf("b saw api-key %q, query %q", rec.Header.Get("api-key"), rec.Query)
		}
	}
}

func stream(t *testing.T, s llm.Streamer, model string) string {
	t.Helper()
	var b strings.Builder
	_, err := s.Stream(testCtx(t), llm.Request{Model: model, Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}},
		func(d string) { b.WriteString(d) })
	if err != nil {
		t.Fatalf("model %q: %v", model, err)
	}
	return b.String()
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestUpstreamsFileErrors: every problem of a file is reported at once.
func TestUpstreamsFileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ext, content string
		want               []string
	}{
		{"many problems", ".yaml", `
upstreams:
  - name: "bad name"
    baseURL: ftp://x
  - name: a
    baseURL: http://localhost:1/v1
    apiKeyEnv: MISSING_KEY
    models: [m, m]
    defaults: {temperature: 3}
  - name: a
    baseURL: http://localhost:2/v1
    models: [{id: x, maxOutputTokens: 10, defaults: {maxTokens: 11}}]
`, []string{`upstream 1 ("bad name"): name`, "baseURL \"ftp://x\"", "list models or set discover", "MISSING_KEY, which is not set",
			`model "m" is listed twice`, "temperature: must be from 0 to 2", "name is used twice", "maxTokens: must be at most 10"}},
		{"unknown field", ".json", `{"upstreams":[{"name":"a","baseURL":"http://x/v1","modles":["m"]}]}`, []string{"unknown field \"modles\""}},
		{"bad duration", ".yml", "upstreams:\n  - {name: a, baseURL: http://x/v1, discover: true, timeouts: {idle: soon}}\n", []string{`"soon" is not a duration`}},
		{"empty", ".json", `{"upstreams":[]}`, []string{"no upstreams"}},
		{"bad deployments", ".yaml", `
upstreams:
  - name: az
    baseURL: https://res.openai.azure.com
    azure: true
    models:
      - {id: a, deployment: ""}
      - {id: b, deployment: "gpt 35"}
      - {id: c, deployment: "x/y"}
      - {id: d, deployment: ".."}
      - {id: e, deployment: "tab\there"}
      - {id: f, deployment: "` + strings.Repeat("x", 201) + `"}
  - name: plain
    baseURL: http://localhost:1/v1
    models: [{id: h, deployment: gpt-35-turbo}]
`, []string{`model "a": deployment "" is empty`, `model "b": deployment "gpt 35" must not hold spaces`,
			`model "c": deployment "x/y" must not hold`, `model "d": deployment ".." is not a name`,
			`model "e": deployment "tab\there" must not hold`, `model "f": deployment "xxx`, "is longer than 200 bytes",
			`model "h": deployment is for Azure upstreams (azure: true)`}},
		{"deployment not a string", ".json", `{"upstreams":[{"name":"a","baseURL":"http://x/v1","azure":true,"models":[{"id":"m","deployment":35}]}]}`,
			[]string{"deployment"}},
		{"inline thinking modes", ".yaml", `
upstreams:
  - name: a
    baseURL: http://localhost:1/v1
    inlineThinking: on
    models: [{id: m, inlineThinking: Open}, {id: n, inlineThinking: auto}]
`, []string{`upstream 1 ("a"): inlineThinking: "on" is not an inline thinking mode (auto, open or off)`, `model "m": inlineThinking: "Open" is not`}},
		{"inline thinking not a string", ".json", `{"upstreams":[{"name":"a","baseURL":"http://x/v1","models":[{"id":"m","inlineThinking":false}]}]}`,
			[]string{"inlineThinking"}},
		{"retries and timeouts out of bounds", ".yaml", `
upstreams:
  - {name: a, baseURL: http://x/v1, models: [m], retries: 1000, timeouts: {firstToken: 1ns, idle: 11m}}
  - {name: b, baseURL: http://x/v1, models: [n], retries: -5, timeouts: {reasoningFirstToken: 2h, list: 99ms}}
`, []string{`upstream 1 ("a"): retries: 1000 is not a whole number from 0 to 10`,
			`upstream 1 ("a"): timeouts: firstToken: 1ns is not a duration from 100ms to 10m (unset: CHATD_FIRST_TOKEN_TIMEOUT)`,
			`upstream 1 ("a"): timeouts: idle: 11m is not a duration from 100ms to 10m`,
			`upstream 2 ("b"): retries: -5 is not`, `upstream 2 ("b"): timeouts: reasoningFirstToken: 2h is not a duration from 100ms to 1h`,
			`upstream 2 ("b"): timeouts: list: 99ms is not`}},
		{"unknown default", ".yaml", `
default: gpt-4o-mnii
upstreams:
  - {name: a, baseURL: http://x/v1, models: [gpt-4o-mini, shared]}
  - {name: b, baseURL: http://y/v1, models: [shared]}
`, []string{`default: "gpt-4o-mnii" is none of the models (gpt-4o-mini, shared, b/shared), and no upstream discovers more`}},
		{"default by an upstream's name with a model it does not have", ".json", `{"default": "a/other", "upstreams": [
			{"name": "a", "baseURL": "http://x/v1", "models": ["shared"]}, {"name": "b", "baseURL": "http://y/v1", "models": ["shared", "other"]}]}`,
			[]string{`default: "a/other" is none of the models (shared, b/shared, other)`}},
		{"NUL in a default stop", ".json", `{"upstreams":[{"name":"a","baseURL":"http://x/v1","models":["m"],"defaults":{"stop":["\n","a\u0000b"]}}]}`,
			[]string{"stop: sequence 2 must not contain NUL"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := models.Parse([]byte(tc.content), tc.ext, env)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}

		})
	}
}

// TestBaseURLRedacted: a baseURL refused as not an http(s) URL is quoted
// with its credentials hidden, as OPENAI_BASE_URL's is.
func TestBaseURLRedacted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ baseURL, want string }{
		{"htps://u:secret@h/v1", `baseURL "htps://xxxxx@h/v1" is not`},
		{"http://u:secret@h:port/v1", `baseURL "http://xxxxx@h:port/v1" is not`},
		{"u:secret@h/v1?api-key=k3yz", `baseURL "xxxxx@h/v1?api-key=xxxxx" is not`},
	} {
		_, err := models.Parse([]byte(`{"upstreams":[{"name":"a","baseURL":"`+tc.baseURL+`","models":["m"]}]}`), ".json", env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v lacks %q", tc.baseURL, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "k3yz")) {
			t.Errorf("%s: the error shows a secret: %v", tc.baseURL, err)
		}
	}
}

// TestUpstreamsFileBounds: values at the bounds of the environment's
// variables, zero timeouts (the server's), and a default that a
// discovering upstream's list may hold are accepted.
func TestUpstreamsFileBounds(t *testing.T) {
	t.Parallel()
	for _, content := range []string{
		`{"upstreams":[{"name":"a","baseURL":"http://x/v1","models":["m"],"retries":0,
			"timeouts":{"firstToken":"100ms","reasoningFirstToken":"1h","idle":"10m","list":"100ms"}}]}`,
		`{"upstreams":[{"name":"a","baseURL":"http://x/v1","models":["m"],"retries":10,"timeouts":{"firstToken":"0s","idle":"0s"}}]}`,
		`{"default":"b/shared","upstreams":[{"name":"a","baseURL":"http://x/v1","models":["shared"]},
			{"name":"b","baseURL":"http://y/v1","models":["shared"]}]}`,
		`{"default":"a/shared","upstreams":[{"name":"a","baseURL":"http://x/v1","models":["shared"]},
			{"name":"b","baseURL":"http://y/v1","models":["shared"]}]}`, // its id is "shared": the router takes both
		`{"default":"listed-later","upstreams":[{"name":"a","baseURL":"http://x/v1","models":["m"]},
			{"name":"b","baseURL":"http://y/v1","discover":true}]}`,
	} {
		if _, err := models.Parse([]byte(content), ".json", env); err != nil {
			t.Errorf("%s: %v", content, err)
		}
	}
}

// TestAzureDeployments: on an Azure upstream, a model's deployment is
// requested as given ('.' and ':' kept); a model without one is requested
// under its id as earlier releases (go-openai's default mapper) named it,
// so that an upstream whose gpt-3.5-turbo is Azure's usual gpt-35-turbo
// deployment keeps working and its stored conversations keep their model.
func TestAzureDeployments(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
	file, err := models.Parse([]byte(`
upstreams:
  - name: az
    baseURL: `+srv.HTTP.URL+`
    azure: true
    azureAPIVersion: "2024-06-01"
    models:
      - gpt-3.5-turbo
      - my:model
      - {id: gpt-4o, maxOutputTokens: 100, deployment: "gpt-4.o:prod"}
      - {id: chat, deployment: gpt-3.5-turbo}
`), ".yaml", env)
	if err != nil {
		t.Fatal(err)
	}
	r := models.New(models.Config{File: file, FirstListWait: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(r.Close)
	for _, tc := range []struct{ id, deployment string }{
		{"gpt-3.5-turbo", "gpt-35-turbo"}, {"my:model", "mymodel"}, {"gpt-4o", "gpt-4.o:prod"}, {"chat", "gpt-3.5-turbo"},
	} {
		stream(t, r, tc.id)
		rec, _ := srv.LastRequest()
		if rec.Deployment != tc.deployment || rec.Model != tc.id {
			t.Fatalf("model %q: requested deployment %q (path %s) for model %q, want %q", tc.id, rec.Deployment, rec.Path, rec.Model, tc.deployment)
		}
	}
}

// TestOneUpstreamHung: an upstream whose model list and answers hang
// affects only its own models: the other upstream's models are listed
// within FirstListWait and answer while a request to the hung one waits.
func TestOneUpstreamHung(t *testing.T) {
	t.Parallel()
	good := fakeai.Start(t, fakeai.Options{Models: []string{"good-1"}, Defaults: fakeai.Config{Tokens: 4}})
	hung := fakeai.Start(t, fakeai.Options{Models: []string{"hung-1"}, ModelsDelay: time.Hour,
		Defaults: fakeai.Config{Fault: fakeai.FaultHangFirst}})
	file, err := models.Parse([]byte(`{"upstreams":[
		{"name":"hung","baseURL":"`+hung.URL+`","models":["hung-fixed"],"discover":true},
		{"name":"good","baseURL":"`+good.URL+`","discover":true}]}`), ".json", env)
	if err != nil {
		t.Fatal(err)
	}
	// The good upstream must list within firstWait, and a list that
	// waited for the hung one again would take all of it: 3 s holds both
	// on a loaded machine, where a goroutine can stall for a second or two.
	const firstWait = 3 * time.Second
	r := models.New(models.Config{File: file, FirstListWait: firstWait, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(r.Close)
	for i := range 3 {
		start := time.Now()
		ms, err := r.Models(testCtx(t))
		if err != nil || ids(ms) != "hung-fixed*,good-1" {
			t.Fatalf("models %s, %v", ids(ms), err)
		}
		// The first list waits for the hung upstream at most firstWait;
		// later ones do not wait for it at all.
		if d := time.Since(start); i > 0 && d >= firstWait {
			t.Fatalf("list %d took %v: it waited for the hung upstream again", i+1, d)
		}
	}
	if n := hung.ModelListRequests(); n != 1 {
		t.Fatalf("%d list requests to the hung upstream, want 1", n)
	}
	hctx, cancel := context.WithCancel(testCtx(t))
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = r.Stream(hctx, llm.Request{Model: "hung-fixed", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}, func(string) {})
	})
	waitFor(t, "the hung request to start", func() bool { return hung.ActiveStreams() == 1 })
	if got := stream(t, r, "good-1"); got != fakeai.ExpectedText(fakeai.Config{Tokens: 4}) {
		t.Fatalf("good upstream answered %q", got)
	}
	cancel()
	wg.Wait()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestExampleFile: deploy/upstreams.example.yaml is a valid upstreams file.
func TestExampleFile(t *testing.T) {
	t.Parallel()
	f, err := models.ReadFile("../../deploy/upstreams.example.yaml", func(string) string { return "set" })
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Upstreams) != 5 || f.Default != "gpt-4o-mini" {
		t.Fatalf("example file read as %+v", f)
	}
	if az := f.Upstreams[4]; !az.Azure || len(az.Models) != 2 || az.Models[0].Deployment != nil ||
		az.Models[1].Deployment == nil || *az.Models[1].Deployment != "gpt-4.1-prod" {
		t.Fatalf("example's Azure upstream read as %+v", az)
	}
}
