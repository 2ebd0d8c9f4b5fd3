package llm_test

import (
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestRouterRefreshDoesNotBlock (issue 10 item 18): once a list is cached,
// an upstream whose GET /v1/models has become slow delays nobody: Models
// and Stream answer at once with the last list while the refresh waits in
// the background, and the fresh list is used once it arrives.
func TestRouterRefreshDoesNotBlock(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Models: []string{"m1"}, Defaults: fakeai.Config{Tokens: 2}})
	up := client(srv.URL)
	r := llm.NewRouter(llm.RouterOptions{Upstreams: []llm.Upstream{discovering("up", up)},
		CacheTTL: time.Nanosecond, Logger: quiet}) // every list is stale at once

	t.Cleanup(r.Close)
	if ms, err := r.Models(testCtx(t)); err != nil || len(ms) != 1 {
		t.Fatalf("first list %+v, %v", ms, err)
	}
	srv.SetModelsDelay(time.Hour)
	before := srv.ModelListRequests()
	start := time.Now()
	for range 20 {
		ms, err := r.Models(testCtx(t))
		if err != nil || len(ms) != 1 || ms[0].ID != "m1" {
			t.Fatalf("list during a slow refresh %+v, %v", ms, err)
		}
		if text, err := collect(testCtx(t), r, "m1", "hi"); err != nil || text != fakeai.ExpectedText(fakeai.Config{Tokens: 2}) {
			t.Fatalf("stream during a slow refresh %q, %v", text, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("20 lists and answers took %v while the upstream list hung", d)
	}
	if n := srv.ModelListRequests() - before; n != 1 {
		t.Fatalf("%d list requests during one slow refresh, want exactly 1 (one at a time)", n)
	}
}
