package llm_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
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
		CacheTTL: time.Nanosecond, FirstListWait: time.Minute, Logger: quiet}) // every list is stale at once; the first is waited for

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
	// A list that waited for the fetch would wait for the hour (until
	// testCtx ends); one that waited FirstListWait (2 s) each time, 40 s.
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("20 lists and answers took %v while the upstream list hung", d)
	}
	if n := srv.ModelListRequests() - before; n != 1 {
		t.Fatalf("%d list requests during one slow refresh, want exactly 1 (one at a time)", n)
	}
}

// TestRouterUpstreamBackAfterDownAtStart: an upstream whose model list
// failed at once (down at start: refused, or answering 503 while it
// starts) is listed by the first request after it came back, which waits
// for its quick list (at most FirstListWait). Before, only the very first
// list was ever waited for: the request that started the next fetch got
// no model of that upstream (Models failed, and a send was refused as an
// unknown model), and only a later one found them.
func TestRouterUpstreamBackAfterDownAtStart(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Models: []string{"m1"}, Defaults: fakeai.Config{Tokens: 2}})
	srv.SetModelsStatus(503)
	r := llm.NewRouter(llm.RouterOptions{Upstreams: []llm.Upstream{discovering("up", client(srv.URL))},
		CacheTTL: time.Nanosecond, FirstListWait: time.Minute, Logger: quiet}) // a failed list is asked again at once
	t.Cleanup(r.Close)
	if _, err := r.Models(testCtx(t)); llm.KindOf(err) != llm.KindUpstream {
		t.Fatalf("list while the upstream is down: err %v, want upstream_error", err)
	}
	srv.SetModelsStatus(0)
	if ms, err := r.Models(testCtx(t)); err != nil || len(ms) != 1 || ms[0].ID != "m1" {
		t.Fatalf("first list after the upstream came back: %+v, %v", ms, err)
	}
}

// TestRouterHungUpstreamDelaysOnce: an upstream whose first list hung
// past FirstListWait, and then failed, is not waited for again: the list
// asked right after that failure answers at once without it while the
// upstream's next fetch hangs.
//
// FirstListWait is 3 s: the fast upstream's list must come within it
// (a loaded machine can hold a goroutine for a second or two), and a
// list that waited again would take all of it, where one that does not
// wait is in memory.
func TestRouterHungUpstreamDelaysOnce(t *testing.T) {
	t.Parallel()
	const firstWait = 3 * time.Second
	slow := fakeai.Start(t, fakeai.Options{Models: []string{"s1"}, ModelsDelay: time.Hour})
	fast := fakeai.Start(t, fakeai.Options{Models: []string{"f1"}})
	slowUp := discovering("slow", client(slow.URL))
	slowUp.ListTimeout = firstWait // the fetch hangs past FirstListWait, then fails
	failed := make(chan struct{}, 10)
	r := llm.NewRouter(llm.RouterOptions{Upstreams: []llm.Upstream{slowUp, discovering("fast", client(fast.URL))},
		CacheTTL: time.Nanosecond, FirstListWait: firstWait, Logger: slog.New(onWarn{failed})})
	t.Cleanup(r.Close)
	if ms, err := r.Models(testCtx(t)); err != nil || len(ms) != 1 || ms[0].ID != "f1" {
		t.Fatalf("first list %+v, %v", ms, err)
	}
	select { // the first fetch timed out
	case <-failed:
	case <-testCtx(t).Done():
		t.Fatal("the slow upstream's list never failed")
	}
	start := time.Now() // this list starts the next fetch, which hangs
	if ms, err := r.Models(testCtx(t)); err != nil || len(ms) != 1 {
		t.Fatalf("list %+v, %v", ms, err)
	}
	if d := time.Since(start); d >= firstWait {
		t.Fatalf("a list waited %v for an upstream that hung before", d)
	}
}

// onWarn is a log handler that signals every warning on its channel.
type onWarn struct{ c chan struct{} }

func (h onWarn) Enabled(context.Context, slog.Level) bool { return true }
func (h onWarn) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h onWarn) WithGroup(string) slog.Handler            { return h }
func (h onWarn) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		select {
		case h.c <- struct{}{}:
		default:
		}
	}
	return nil
}

// TestRouterIDsStayWithTheirModels: a refresh of one upstream's list moves
// no id to another upstream's model. Upstream a lists its models and comes
// before upstream b, which configures or lists "x". Before, ids were
// handed out anew, in upstream order, on every list: once a's list gained
// "x", "x" reached a's model and b's became "b/x" (a conversation on "x"
// was answered by another provider's model, unannounced), and once a's
// list dropped "x", b's model took it. Now a configured model keeps its
// name, an id stays with the model it was given to, and an id whose model
// is no longer listed is given to no other one: it is unknown until that
// model is listed again.
func TestRouterIDsStayWithTheirModels(t *testing.T) {
	t.Parallel()
	type phase struct {
		aLists []string
		want   map[string]string // id -> upstream:name it reaches ("": unknown_model)
	}
	tests := []struct {
		name            string
		bConfig, bLists []string
		phases          []phase
	}{
		{"a lists a model b configures", []string{"x"}, nil, []phase{
			{[]string{"m"}, map[string]string{"x": "b:x", "m": "a:m"}},
			{[]string{"m", "x"}, map[string]string{"x": "b:x", "a/x": "a:x", "b/x": "b:x"}},
		}},
		{"a lists a model b listed first", nil, []string{"x"}, []phase{
			{[]string{"m"}, map[string]string{"x": "b:x"}},
			{[]string{"m", "x"}, map[string]string{"x": "b:x", "a/x": "a:x"}},
		}},
		{"a drops a model b configures", []string{"x"}, nil, []phase{
			{[]string{"m", "x"}, map[string]string{"x": "b:x", "a/x": "a:x"}},
			{[]string{"m"}, map[string]string{"x": "b:x", "a/x": ""}},
		}},
		{"a drops a model b lists too, then lists it again", nil, []string{"x"}, []phase{
			{[]string{"m", "x"}, map[string]string{"x": "a:x", "b/x": "b:x"}},
			{[]string{"m"}, map[string]string{"x": "", "b/x": "b:x", "a/x": ""}},
			{[]string{"m", "x"}, map[string]string{"x": "a:x", "b/x": "b:x"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := &listCatalog{}, &listCatalog{}
			b.set(tc.bLists...)
			upB := llm.Upstream{Name: "b", Streamer: echoStreamer("b")}
			for _, id := range tc.bConfig {
				upB.Models = append(upB.Models, llm.ModelInfo{ID: id, Name: id})
			}
			if tc.bLists != nil {
				upB.Catalog = b
			}
			r := llm.NewRouter(llm.RouterOptions{CacheTTL: time.Nanosecond, FirstListWait: time.Minute, Logger: quiet,
				Upstreams: []llm.Upstream{{Name: "a", Streamer: echoStreamer("a"), Catalog: a}, upB}})
			t.Cleanup(r.Close)
			for i, ph := range tc.phases {
				a.set(ph.aLists...)
				waitListed(t, r, "a", ph.aLists)
				for id, want := range ph.want {
					got, err := collect(testCtx(t), r, id, "hi")
					if want == "" && llm.KindOf(err) != llm.KindUnknownModel || want != "" && (err != nil || got != want) {
						t.Errorf("phase %d, a lists %v: %q reached %q (%v), want %q", i, ph.aLists, id, got, err, want)
					}
				}
			}
		})
	}
}

// waitListed waits until r lists exactly names for upstream up.
func waitListed(t *testing.T, r *llm.Router, up string, names []string) {
	t.Helper()
	ctx := testCtx(t)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	want := slices.Sorted(slices.Values(names))
	for {
		ms, err := r.Models(ctx)
		var got []string
		for _, m := range ms {
			if m.Upstream == up {
				got = append(got, m.Name)
			}
		}
		if err == nil && slices.Equal(slices.Sorted(slices.Values(got)), want) {
			return
		}
		select {
		case <-tick.C: // a list is refreshed in the background; ask again
		case <-ctx.Done():
			t.Fatalf("upstream %s lists %v, want %v (%v)", up, got, want, err)
		}
	}
}

// listCatalog lists the models set last.
type listCatalog struct {
	mu  sync.Mutex
	ids []string
}

func (c *listCatalog) set(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = ids
}

func (c *listCatalog) Models(context.Context) ([]llm.ModelInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]llm.ModelInfo, 0, len(c.ids))
	for _, id := range c.ids {
		out = append(out, llm.ModelInfo{ID: id})
	}
	return out, nil
}

// echoStreamer answers "<its name>:<the model asked for>".
type echoStreamer string

func (e echoStreamer) Stream(_ context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
	onDelta(string(e) + ":" + req.Model)
	return llm.Result{FinishReason: "stop"}, nil
}

// TestRouterCloseEndsListFetch: Close cuts a model list fetch in flight
// and returns once it ended, and the fetch cut so logs no warning (a
// shutdown is no upstream failure). Close returned at once, leaving the
// fetch running, which then warned "llm upstream model list failed" with
// context.Canceled.
func TestRouterCloseEndsListFetch(t *testing.T) {
	t.Parallel()
	cat := &blockingCatalog{started: make(chan struct{}), ended: make(chan struct{})}
	logs := &records{}
	r := llm.NewRouter(llm.RouterOptions{Upstreams: []llm.Upstream{{Name: "up", Streamer: echoStreamer("x"), Catalog: cat}},
		FirstListWait: time.Nanosecond, Logger: slog.New(logs)}) // no request waits for the list
	if _, err := r.Models(testCtx(t)); err == nil {
		t.Fatal("a list before the upstream answered")
	}
	select {
	case <-cat.started:
	case <-testCtx(t).Done():
		t.Fatal("no list fetch started")
	}
	r.Close()
	select {
	case <-cat.ended:
	default:
		t.Error("Close returned with the list fetch still running")
	}
	<-cat.ended
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for i, l := range logs.lines {
		if logs.level[i] >= slog.LevelWarn {
			t.Errorf("logged at %v: %s", logs.level[i], l)
		}
	}
}

// blockingCatalog is an upstream whose model list answers only once its
// context ends; started is closed when it is asked, ended when it
// returns.
type blockingCatalog struct{ started, ended chan struct{} }

func (c *blockingCatalog) Models(ctx context.Context) ([]llm.ModelInfo, error) {
	close(c.started)
	<-ctx.Done()
	defer close(c.ended)
	return nil, ctx.Err()
}
