package llm_test

import (
	"strings"
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestRouterUnlisted: Unlisted tells a model missing for now from one no
// longer offered. While an upstream that lists its models has not
// answered since start, its models are missing (its configured ones stay)
// and Unlisted names it with its failure; once it answered, Unlisted is
// nil, also while a later refresh fails (its last list is kept), and an
// upstream of configured models only never makes it say anything.
func TestRouterUnlisted(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Models: []string{"m1"}, Defaults: fakeai.Config{Tokens: 2}})
	srv.SetModelsStatus(503)
	up := discovering("up", client(srv.URL))
	up.Label = "Upstream One"
	up.Models = []llm.ModelInfo{{ID: "fixed", Name: "fixed"}}
	fixedOnly := llm.Upstream{Name: "other", Streamer: client(srv.URL), Models: []llm.ModelInfo{{ID: "o1", Name: "o1"}}}
	r := llm.NewRouter(llm.RouterOptions{Upstreams: []llm.Upstream{fixedOnly, up},
		CacheTTL: time.Nanosecond, FirstListWait: time.Minute, Logger: quiet})
	t.Cleanup(r.Close)
	if ms, err := r.Models(testCtx(t)); err != nil || len(ms) != 2 {
		t.Fatalf("list while the upstream is down: %+v, %v; want its configured model and the other's", ms, err)
	}
	err := r.Unlisted()
	if llm.KindOf(err) != llm.KindUpstream || !strings.Contains(err.Error(), "Upstream One cannot list its models") {
		t.Fatalf("Unlisted while the upstream is down: %v, want an upstream_error naming it", err)
	}
	srv.SetModelsStatus(0)
	if ms, err := r.Models(testCtx(t)); err != nil || len(ms) != 3 {
		t.Fatalf("list once the upstream is back: %+v, %v", ms, err)
	}
	if err := r.Unlisted(); err != nil {
		t.Fatalf("Unlisted once every upstream is listed: %v", err)
	}
	srv.SetModelsStatus(503) // a refresh fails: the last list is kept
	if ms, err := r.Models(testCtx(t)); err != nil || len(ms) != 3 {
		t.Fatalf("list while a refresh fails: %+v, %v", ms, err)
	}
	if err := r.Unlisted(); err != nil {
		t.Fatalf("Unlisted while a refresh fails over a kept list: %v", err)
	}

	only := llm.NewRouter(llm.RouterOptions{Upstreams: []llm.Upstream{fixedOnly}, Logger: quiet})
	t.Cleanup(only.Close)
	if err := only.Unlisted(); err != nil {
		t.Fatalf("Unlisted of configured models only: %v", err)
	}
}
