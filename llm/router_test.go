package llm_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/demo"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var quiet = slog.New(slog.DiscardHandler)

func client(url string) *openai.Client {
	return openai.New(openai.Options{BaseURL: url, RetryBase: time.Millisecond, RetryMax: 10 * time.Millisecond, Logger: quiet})
}

func collect(ctx context.Context, s llm.Streamer, model, prompt string) (string, error) {
	var b strings.Builder
	_, err := s.Stream(ctx, llm.Request{Model: model, Messages: []llm.Message{{Role: llm.RoleUser, Content: prompt}}},
		func(d string) { b.WriteString(d) })
	return b.String(), err
}

func TestRouterDispatch(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 6}})
	up := client(srv.URL)
	routes := append(llm.Routes(" fake-mini, fake-large,,fake-mini ", up), llm.Route{Info: demo.Info(), Streamer: demo.New(demo.Options{Delay: -1})})
	r := llm.NewRouter(llm.RouterOptions{Routes: routes, Logger: quiet})

	models, err := r.Models(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range models {
		ids = append(ids, m.ID)
		if m.Default != (m.ID == "fake-mini") {
			t.Errorf("model %+v: wrong Default", m)
		}
	}
	if strings.Join(ids, ",") != "fake-mini,fake-large,demo" || !models[2].Demo {
		t.Fatalf("models %+v", models)
	}

	fakeText := fakeai.ExpectedText(fakeai.Config{Tokens: 6})
	tests := []struct {
		model, wantModel, want string
		wantKind               llm.ErrorKind
	}{
		{"fake-large", "fake-large", fakeText, ""},
		{"", "fake-mini", fakeText, ""},
		{"demo", "", demo.Answer(llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}), ""},
		{"gpt-9", "", "", llm.KindUnknownModel},
	}
	for _, tc := range tests {
		before := srv.Requests()
		text, err := collect(testCtx(t), r, tc.model, "hi")
		if llm.KindOf(err) != tc.wantKind || (tc.wantKind == "" && err != nil) {
			t.Fatalf("model %q: err %v, want kind %q", tc.model, err, tc.wantKind)
		}
		if text != tc.want {
			t.Fatalf("model %q: text %q, want %q", tc.model, text, tc.want)
		}
		if tc.wantModel == "" {
			if srv.Requests() != before {
				t.Fatalf("model %q reached the upstream", tc.model)
			}
			continue
		}
		if last, _ := srv.LastRequest(); last.Model != tc.wantModel {
			t.Fatalf("model %q: upstream asked for %q, want %q", tc.model, last.Model, tc.wantModel)
		}
	}
	if !r.IsDemo("demo") || r.IsDemo("fake-mini") {
		t.Fatal("IsDemo")
	}
}

func TestRouterDiscovery(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{
		Models:   []string{"llama3", "text-embedding-3-small", "gpt-4o", "whisper-1", "tts-1", "dall-e-3"},
		Defaults: fakeai.Config{Tokens: 3},
	})
	up := client(srv.URL)
	// The first list waits for the fake's, however loaded the machine
	// (FirstListWait's 2 s default is near what a stall can take).
	r := llm.NewRouter(llm.RouterOptions{Upstreams: []llm.Upstream{discovering("up", up)}, FirstListWait: time.Minute, Logger: quiet})
	for range 3 {
		models, err := r.Models(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		want := []llm.ModelInfo{{ID: "gpt-4o", Name: "gpt-4o", Default: true, Upstream: "up", UpstreamLabel: "up"},
			{ID: "llama3", Name: "llama3", Upstream: "up", UpstreamLabel: "up"}}
		if !reflect.DeepEqual(models, want) {
			t.Fatalf("models %+v", models)
		}
	}
	if n := srv.ModelListRequests(); n != 1 {
		t.Fatalf("upstream asked %d times: list not cached", n)
	}
	if text, err := collect(testCtx(t), r, "llama3", "hi"); err != nil || text != fakeai.ExpectedText(fakeai.Config{Tokens: 3}) {
		t.Fatalf("llama3: %q %v", text, err)
	}
	if _, err := collect(testCtx(t), r, "text-embedding-3-small", "hi"); llm.KindOf(err) != llm.KindUnknownModel {
		t.Fatalf("filtered model: %v", err)
	}

	// A short TTL asks again (in the background, serving the last list meanwhile).
	r2 := llm.NewRouter(llm.RouterOptions{Upstreams: []llm.Upstream{discovering("up", up)}, CacheTTL: time.Nanosecond,
		FirstListWait: time.Minute, Default: "llama3", Logger: quiet})
	t.Cleanup(r2.Close)
	before := srv.ModelListRequests()
	for range 2 {
		models, err := r2.Models(testCtx(t))
		if err != nil || !models[1].Default || models[1].ID != "llama3" {
			t.Fatalf("models %+v, %v", models, err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for srv.ModelListRequests()-before < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("upstream asked %d times with an expired cache", srv.ModelListRequests()-before)
		}
		if _, err := r2.Models(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}

// discovering is an upstream that offers what its model list says.
func discovering(name string, c *openai.Client) llm.Upstream {
	return llm.Upstream{Name: name, Streamer: c, Catalog: c}
}

func TestRouterUpstreamDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/v1"
	ln.Close()
	up := client(url)

	// With fixed routes the list still works.
	fixed := discovering("up", up)
	fixed.Models = []llm.ModelInfo{{ID: "gpt-4o-mini", Name: "gpt-4o-mini"}}
	r := llm.NewRouter(llm.RouterOptions{Upstreams: []llm.Upstream{fixed}, Logger: quiet})
	models, err := r.Models(testCtx(t))
	if err != nil || len(models) != 1 || models[0].ID != "gpt-4o-mini" || !models[0].Default {
		t.Fatalf("models %+v, %v", models, err)
	}
	// Without, the failure shows.
	r = llm.NewRouter(llm.RouterOptions{Upstreams: []llm.Upstream{discovering("up", up)}, Logger: quiet})
	if _, err := r.Models(testCtx(t)); llm.KindOf(err) != llm.KindConnection {
		t.Fatalf("err %v, want connection", err)
	}
	var e *llm.Error
	if _, err := collect(testCtx(t), r, "", "hi"); !errors.As(err, &e) {
		t.Fatalf("stream err %v", err)
	}
}

func TestDefaultModel(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		list []llm.ModelInfo
		want string
	}{
		{"empty", nil, ""},
		{"marked", []llm.ModelInfo{{ID: "a"}, {ID: "b", Default: true}}, "b"},
		{"none marked: the first", []llm.ModelInfo{{ID: "a"}, {ID: "b"}}, "a"},
	} {
		if got := llm.DefaultModel(tt.list); got != tt.want {
			t.Errorf("%s: DefaultModel = %q, want %q", tt.name, got, tt.want)
		}
	}
}
