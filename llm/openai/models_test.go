package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

// TestModelWindowsTolerant: a model's context window is read from any of
// the fields servers report it in (Mistral's max_context_length among
// them), and a model whose capabilities say it does not chat (Mistral's
// OCR model) is left out. A model list whose entries report their
// context window in unexpected JSON types loses only those values: an
// integral float or a numeric string is read, anything else is ignored
// per field, and no entry costs another its window (before, one such
// value failed the decoding of every window; an odd "created" or id
// failed the whole list). What was ignored is logged once, not again for
// the same list read again.
func TestModelWindowsTolerant(t *testing.T) {
	t.Parallel()
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	tests := []struct {
		id     string
		fields map[string]json.RawMessage
		want   int // -1: not listed
		logged bool
	}{
		{"int", map[string]json.RawMessage{"context_length": raw(`8192`)}, 8192, false},
		{"float", map[string]json.RawMessage{"context_length": raw(`8192.0`)}, 8192, false},
		{"exponent", map[string]json.RawMessage{"max_model_len": raw(`3.2768e4`)}, 32768, false},
		{"string", map[string]json.RawMessage{"context_window": raw(`"131072"`)}, 131072, false},
		{"string float", map[string]json.RawMessage{"context_window": raw(`" 4096.0 "`)}, 4096, false},
		{"null", map[string]json.RawMessage{"context_length": raw(`null`)}, 0, false},
		{"empty string", map[string]json.RawMessage{"context_length": raw(`""`)}, 0, false},
		{"word", map[string]json.RawMessage{"context_length": raw(`"unknown"`)}, 0, true},
		{"fraction", map[string]json.RawMessage{"context_length": raw(`8192.5`)}, 0, true},
		{"negative", map[string]json.RawMessage{"context_length": raw(`-1`)}, 0, true},
		{"huge", map[string]json.RawMessage{"context_length": raw(`1e30`)}, 0, true},
		{"bool", map[string]json.RawMessage{"context_length": raw(`true`)}, 0, true},
		{"object", map[string]json.RawMessage{"context_length": raw(`{"n":8192}`)}, 0, true},
		{"hex string", map[string]json.RawMessage{"context_length": raw(`"0x2000"`)}, 0, true},
		{"one bad field of two", map[string]json.RawMessage{"context_length": raw(`"abc"`), "max_model_len": raw(`16384`)}, 16384, true},
		{"largest of three", map[string]json.RawMessage{"context_length": raw(`"1000"`), "max_model_len": raw(`2000.0`), "context_window": raw(`3000`)}, 3000, false},
		{"odd created", map[string]json.RawMessage{"created": raw(`"2024-01-01"`), "permission": raw(`"none"`), "context_length": raw(`512`)}, 512, false},
		{"numeric id", map[string]json.RawMessage{"id": raw(`42`), "context_length": raw(`512`)}, -1, true},
		{"plain", nil, 0, false},
		{"mistral", map[string]json.RawMessage{"max_context_length": raw(`131072`), "capabilities": raw(`{"completion_chat":true,"vision":false}`)}, 131072, false},
		{"mistral not a chat model", map[string]json.RawMessage{"max_context_length": raw(`16384`), "capabilities": raw(`{"completion_chat":false}`)}, -1, false},
		{"capabilities as a list", map[string]json.RawMessage{"capabilities": raw(`["tool_use"]`), "context_length": raw(`4096`)}, 4096, false},
	}
	opts := fakeai.Options{APIKey: testKey, ModelFields: map[string]map[string]json.RawMessage{}}
	for _, tc := range tests {
		opts.Models = append(opts.Models, tc.id)
		opts.ModelFields[tc.id] = tc.fields
	}
	srv := fakeai.Start(t, opts)
	logs := &recorder{}
	c := newClient(srv.URL, func(o *openai.Options) { o.Logger = slog.New(logs) })
	got, err := c.Models(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Models(testCtx(t)); err != nil { // the same list again: not logged again
		t.Fatal(err)
	}
	windows := make(map[string]int)
	for _, m := range got {
		windows[m.ID] = m.ContextTokens
	}
	for _, tc := range tests {
		w, ok := windows[tc.id]
		if tc.want < 0 && ok || tc.want >= 0 && (!ok || w != tc.want) {
			t.Errorf("%s: window %d (listed %v), want %d", tc.id, w, ok, tc.want)
		}
	}
	recs := logs.warnings()
	if len(recs) != 1 {
		t.Fatalf("%d warnings, want 1: %v", len(recs), recs)
	}
	named := 0 // the warning names the first five ignored values
	for _, tc := range tests {
		if tc.logged && named < 5 {
			named++
			if !strings.Contains(recs[0], `model "`+tc.id+`" context_length`) {
				t.Errorf("the warning does not name %q: %s", tc.id, recs[0])
			}
		}
	}
	if !strings.Contains(recs[0], "count=9") {
		t.Errorf("the warning does not count 9 values: %s", recs[0])
	}
}

// TestModelListBodies: a model list answer that is no list says what it
// is, instead of a list of nothing (an error object answered with 200) or
// an unreadable-reply error (a web page); a body over the size bound is
// refused, not read whole.
func TestModelListBodies(t *testing.T) {
	t.Parallel()
	huge := `{"data":[` + strings.Repeat(" ", 17<<20) + `]}`
	tests := []struct {
		name, body string
		kind       llm.ErrorKind // "": no error
		says       string
		models     int
	}{
		{"web page", "<!doctype html><html><body>Welcome</body></html>", llm.KindUpstream, "web page", 0},
		{"openai error object", `{"error":{"message":"Incorrect API key sk-abcdef0123456789","code":"invalid_api_key"}}`, llm.KindUpstream, "Incorrect API key [redacted]", 0},
		{"error with a status code", `{"error":{"message":"slow down","code":429}}`, llm.KindRateLimited, "slow down", 0},
		{"vllm error object", `{"object":"error","message":"engine dead","type":"InternalServerError","code":500}`, llm.KindUpstream, "engine dead", 0},
		{"error string", `{"error":"no such route"}`, llm.KindUpstream, "no such route", 0},
		{"detail", `{"detail":"Not Found"}`, llm.KindUpstream, "Not Found", 0},
		{"not json", "OK", llm.KindMalformed, "could not be read", 0},
		{"data not an array", `{"object":"list","data":"none"}`, llm.KindMalformed, "could not be read", 0},
		{"too large", huge, llm.KindUpstream, "larger than 16 MiB", 0},
		{"null data", `{"object":"list","data":null}`, "", "", 0},
		{"no models", `{"object":"list","data":[]}`, "", "", 0},
		{"entry not an object", `{"data":["x",{"id":"m"}]}`, "", "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			got, err := newClient(srv.URL, nil).Models(testCtx(t))
			if tc.kind == "" {
				if err != nil || len(got) != tc.models {
					t.Fatalf("models %+v err %v, want %d models", got, err, tc.models)
				}
				return
			}
			var e *llm.Error
			if !errors.As(err, &e) || e.Kind != tc.kind || !strings.Contains(e.Message, tc.says) || strings.Contains(e.Message, "sk-abc") {
				t.Fatalf("err %v, want %s saying %q", err, tc.kind, tc.says)
			}
		})
	}
}

// recorder is a slog.Handler keeping its records as text lines.
type recorder struct {
	mu    sync.Mutex
	lines []string
	level []slog.Level
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines, r.level = append(r.lines, b.String()), append(r.level, rec.Level)
	return nil
}

// warnings returns the records of level Warn and above.
func (r *recorder) warnings() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for i, l := range r.lines {
		if r.level[i] >= slog.LevelWarn {
			out = append(out, l)
		}
	}
	return out
}
