package llm_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// configured is an upstream named name configuring models, served by s.
func configured(name string, s llm.Streamer, models ...string) llm.Upstream {
	up := llm.Upstream{Name: name, Streamer: s}
	for _, m := range models {
		up.Models = append(up.Models, llm.ModelInfo{ID: m, Name: m})
	}
	return up
}

// TestCheckIDs: a configured model whose name and "upstream/name" are both
// earlier configured models' ids would get no id: left out of the list,
// its "<upstream>/<name>" reaching another upstream. CheckIDs names it,
// who has both ids, and the fix; a model that gets either is accepted.
func TestCheckIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ups  []llm.Upstream
		want []string // substrings of the error; nil: accepted
	}{
		{"OpenRouter's name before the prefixed one", []llm.Upstream{
			configured("openrouter", nil, "openai/gpt-4o"), configured("azure", nil, "gpt-4o"), configured("openai", nil, "gpt-4o")},
			[]string{`upstream "openai"'s model "gpt-4o" gets no id: "gpt-4o" is the id of upstream "azure"'s model "gpt-4o"`,
				`"openai/gpt-4o" that of upstream "openrouter"'s model "openai/gpt-4o"`,
				`give upstream "openai" another name (it prefixes the id: "<name>/gpt-4o")`}},
		{"two clashes, both named", []llm.Upstream{
			configured("x", nil, "a/m", "b/m"), configured("y", nil, "m"), configured("a", nil, "m"), configured("b", nil, "m")},
			[]string{`upstream "a"'s model "m" gets no id: "m" is the id of upstream "y"'s model "m" and "a/m" that of upstream "x"'s model "a/m"`,
				`upstream "b"'s model "m" gets no id: "m" is the id of upstream "y"'s model "m" and "b/m" that of upstream "x"'s model "b/m"`}},
		{"the same name on three upstreams", []llm.Upstream{
			configured("a", nil, "m"), configured("b", nil, "m"), configured("c", nil, "m")}, nil},
		{"OpenRouter's name with no clash of the plain one", []llm.Upstream{
			configured("openrouter", nil, "openai/gpt-4o"), configured("openai", nil, "gpt-4o")}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := llm.CheckIDs(tc.ups)
			if (err == nil) != (tc.want == nil) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestRouterLeftOutLogged: a model the Router can give no id is left out
// of the list with one log line naming it, however often the list is
// asked: a configured one (which CheckIDs refuses before) as an error, a
// listed one as a warning. Before, it was dropped without a word.
func TestRouterLeftOutLogged(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lists []string // what upstream c lists; nil: it configures m
		level slog.Level
	}{
		{"configured", nil, slog.LevelError},
		{"listed", []string{"m"}, slog.LevelWarn},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{Models: tc.lists})
			c := configured("c", client(srv.URL), "m")
			if tc.lists != nil {
				c = discovering("c", client(srv.URL))
			}
			log := &records{}
			r := llm.NewRouter(llm.RouterOptions{Logger: slog.New(log), FirstListWait: time.Minute, Upstreams: []llm.Upstream{
				configured("a", client(srv.URL), "m"), configured("b", client(srv.URL), "c/m"), c}})
			t.Cleanup(r.Close)
			for range 3 {
				ms, err := r.Models(testCtx(t))
				if err != nil {
					t.Fatal(err)
				}
				if ids := modelIDs(ms); !slices.Equal(ids, []string{"m", "c/m"}) {
					t.Fatalf("ids %v", ids)
				}
			}
			got := log.matching(`upstream "c"'s model "m" gets no id`)
			if len(got) != 1 || got[0] != tc.level {
				t.Fatalf("log lines %v naming c's m, want one at %v", got, tc.level)
			}
		})
	}
}

func modelIDs(ms []llm.ModelInfo) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// records is a log handler that keeps every record's level and text.
type records struct {
	mu    sync.Mutex
	lines []string
	level []slog.Level
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *records) WithGroup(string) slog.Handler            { return h }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines, h.level = append(h.lines, b.String()), append(h.level, r.Level)
	return nil
}

// matching returns the levels of the records holding s.
func (h *records) matching(s string) []slog.Level {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Level
	for i, l := range h.lines {
		if strings.Contains(l, s) {
			out = append(out, h.level[i])
		}
	}
	return out
}

// TestRouterNamesByUpstream: "<upstream>/<name>" names a model by its
// upstream's name wherever a model is named: ModelID gives its id (the
// id wins when it is another model's), and RouterOptions.Default may be
// one. Before, the default was compared with ids only: "a/x" was passed
// over for the first model. Upstream a configures m and x, b x ("b/x"),
// and OpenRouter "a/m", an id a's m's upstream name also spells.
func TestRouterNamesByUpstream(t *testing.T) {
	t.Parallel()
	ups := []llm.Upstream{configured("a", nil, "m", "x"), configured("b", nil, "x"), configured("openrouter", nil, "a/m")}
	tests := []struct {
		name, def, id string
		want          string // the id; "": none
	}{
		{"an id", "", "x", "x"},
		{"a model by its upstream's name", "", "a/x", "x"},
		{"an id that is its upstream's name too", "", "b/x", "b/x"},
		{"another model's id wins", "", "a/m", "a/m"},
		{"OpenRouter's by its upstream's name", "", "openrouter/a/m", "a/m"},
		{"no such upstream", "", "c/x", ""},
		{"no such model", "", "a/y", ""},
		{"empty", "", "", ""},
		{"the default by its upstream's name", "a/x", "", "x"},
		{"the default by its id", "b/x", "", "b/x"},
		{"no such default: the first model", "c/x", "", "m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := llm.NewRouter(llm.RouterOptions{Upstreams: ups, Default: tc.def, Logger: quiet})
			t.Cleanup(r.Close)
			if tc.def != "" {
				ms, err := r.Models(testCtx(t))
				if got := llm.DefaultModel(ms); err != nil || got != tc.want {
					t.Fatalf("default %q (%v), want %q", got, err, tc.want)
				}
				return
			}
			id, ok := r.ModelID(testCtx(t), tc.id)
			if id != tc.want || ok != (tc.want != "") {
				t.Fatalf("ModelID(%q) = %q, %v; want %q", tc.id, id, ok, tc.want)
			}
		})
	}
}
