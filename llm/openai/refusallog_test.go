package openai_test

import (
	"log/slog"
	"strings"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

// TestRefusalsLoggedAsErrors: an upstream refusing the API key (401,
// 403) or out of quota fails every answer until the operator acts, so its
// failure is logged at error, which CHATD_LOG_LEVEL=error keeps, once for
// a burst of answers failing alike (per upstream, once a minute); other
// failures stay warnings, one per answer. Before, all were warnings: an
// operator who chose error saw nothing while every user got errors.
func TestRefusalsLoggedAsErrors(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	const burst = 20
	cases := []struct {
		name, fault string
		kind        llm.ErrorKind
		wantLevel   slog.Level
		wantLines   int
	}{
		{"key refused", "401", llm.KindBadRequest, slog.LevelError, 1},
		{"access refused", "403", llm.KindBadRequest, slog.LevelError, 1},
		{"quota exhausted", "402", llm.KindQuota, slog.LevelError, 1},
		{"server error", "500", llm.KindUpstream, slog.LevelWarn, burst},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &recorder{}
			c := newClient(srv.URL, func(o *openai.Options) { o.MaxRetries = -1; o.Logger = slog.New(logs) })
			for range burst {
				if r := stream(testCtx(t), c, "[[fake fault="+tc.fault+"]]", 0); llm.KindOf(r.err) != tc.kind {
					t.Fatalf("err %v, want %s", r.err, tc.kind)
				}
			}
			logs.mu.Lock()
			defer logs.mu.Unlock()
			n := 0
			for i, l := range logs.lines {
				if !strings.HasPrefix(l, "llm upstream request failed ") {
					continue
				}
				n++
				if logs.level[i] != tc.wantLevel || !strings.Contains(l, "status="+tc.fault) {
					t.Errorf("%s: %q, want level %s and status %s", logs.level[i], l, tc.wantLevel, tc.fault)
				}
			}
			if n != tc.wantLines {
				t.Errorf("%d failure lines for %d answers failed alike, want %d", n, burst, tc.wantLines)
			}
		})
	}
}
