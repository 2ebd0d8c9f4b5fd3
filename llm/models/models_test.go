package models_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/demo"
	"chatd/llm/fakeai"
	"chatd/llm/models"
)

func ids(ms []llm.ModelInfo) string {
	var out []string
	for _, m := range ms {
		id := m.ID
		if m.Default {
			id += "*"
		}
		if m.Demo {
			id += "(demo)"
		}
		out = append(out, id)
	}
	return strings.Join(out, ",")
}

func TestNew(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: "sk-k", Models: []string{"up-a", "up-b"}, Defaults: fakeai.Config{Tokens: 4}})
	quiet := slog.New(slog.DiscardHandler)
	tests := []struct {
		name      string
		cfg       models.Config
		wantIDs   string
		wantText  string
		wantDemo  bool
		wantModel string // what the upstream was asked for
	}{
		{"nothing configured: demo", models.Config{DemoDelay: -1}, "demo*(demo)",
			demo.Answer(llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}), true, ""},
		{"configured list", models.Config{APIKey: "sk-k", BaseURL: srv.URL, Models: "m1, m2"}, "m1*,m2",
			fakeai.ExpectedText(fakeai.Config{Tokens: 4}), false, "m1"},
		{"discovered", models.Config{APIKey: "sk-k", BaseURL: srv.URL}, "up-a*,up-b",
			fakeai.ExpectedText(fakeai.Config{Tokens: 4}), false, "up-a"},
		{"list and discovery", models.Config{APIKey: "sk-k", BaseURL: srv.URL, Models: "m1", Discover: true}, "m1*,up-a,up-b",
			fakeai.ExpectedText(fakeai.Config{Tokens: 4}), false, "m1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tc.cfg.Logger = quiet
			if tc.cfg.Demo() != tc.wantDemo {
				t.Fatalf("Demo() = %v", tc.cfg.Demo())
			}
			tc.cfg.FirstListWait = time.Minute // the first list waits for the fake's, however loaded the machine
			r := models.New(tc.cfg)
			ms, err := r.Models(ctx)
			if err != nil || ids(ms) != tc.wantIDs {
				t.Fatalf("models %s, %v; want %s", ids(ms), err, tc.wantIDs)
			}
			var b strings.Builder
			_, err = r.Stream(ctx, llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}, func(s string) { b.WriteString(s) })
			if err != nil || b.String() != tc.wantText {
				t.Fatalf("stream %q, %v", b.String(), err)
			}
			if tc.wantModel != "" {
				if last, _ := srv.LastRequest(); last.Model != tc.wantModel {
					t.Fatalf("upstream asked for %q", last.Model)
				}
			}
		})
	}
}
