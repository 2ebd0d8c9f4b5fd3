package openai_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

const testKey = "sk-test-0123456789abcdef"

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newClient returns a client of url with fast retries and generous timeouts.
func newClient(url string, mod func(*openai.Options)) *openai.Client {
	o := openai.Options{
		BaseURL: url, APIKey: testKey,
		RetryBase: time.Millisecond, RetryMax: 20 * time.Millisecond,
		FirstTokenTimeout: 20 * time.Second, IdleTimeout: 20 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&o)
	}
	return openai.New(o)
}

// run streams one answer to prompt and collects the deltas.
type run struct {
	deltas []string
	res    llm.Result
	err    error
}

func (r run) text() string { return strings.Join(r.deltas, "") }

// request asks fake-mini to answer prompt.
func request(prompt string) llm.Request {
	return llm.Request{Model: "fake-mini", Messages: []llm.Message{
		{Role: llm.RoleSystem, Content: "You are terse."},
		{Role: llm.RoleUser, Content: prompt},
	}}
}

func stream(ctx context.Context, c llm.Streamer, prompt string, maxTokens int) run {
	var r run
	req := request(prompt)
	req.MaxTokens = maxTokens
	r.res, r.err = c.Stream(ctx, req, func(s string) { r.deltas = append(r.deltas, s) })
	return r
}

// checkDeltas fails on an empty delta or one that is not whole UTF-8.
func checkDeltas(t *testing.T, deltas []string) {
	t.Helper()
	for i, d := range deltas {
		if d == "" || !utf8.ValidString(d) {
			t.Fatalf("delta %d is %q", i, d)
		}
	}
}

func TestStreamText(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	c := newClient(srv.URL, nil)
	tests := []struct {
		name       string
		prompt     string
		maxTokens  int
		want       string
		wantFinish string
		wantUsage  llm.Usage
	}{
		{"split utf8", "tell me [[fake tokens=40 split=1]]", 0,
			fakeai.ExpectedText(fakeai.Config{Tokens: 40}), "stop", llm.Usage{PromptTokens: 5, CompletionTokens: 40, TotalTokens: 45}},
		{"markdown", "[[fake mode=markdown split=1 delay=1ms]]", 0,
			fakeai.ExpectedText(fakeai.Config{Mode: fakeai.ModeMarkdown}), "stop", llm.Usage{PromptTokens: 3, CompletionTokens: len(fakeai.Tokens(fakeai.Config{Mode: fakeai.ModeMarkdown})), TotalTokens: 3 + len(fakeai.Tokens(fakeai.Config{Mode: fakeai.ModeMarkdown}))}},
		{"xss", "x [[fake mode=xss]]", 0,
			fakeai.ExpectedText(fakeai.Config{Mode: fakeai.ModeXSS}), "stop", llm.Usage{PromptTokens: 4, CompletionTokens: len(fakeai.Tokens(fakeai.Config{Mode: fakeai.ModeXSS})), TotalTokens: 4 + len(fakeai.Tokens(fakeai.Config{Mode: fakeai.ModeXSS}))}},
		{"length", "a b [[fake tokens=30]]", 7,
			fakeai.ExpectedPrefix(fakeai.Config{Tokens: 30}, 7), "length", llm.Usage{PromptTokens: 5, CompletionTokens: 7, TotalTokens: 12}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := stream(testCtx(t), c, tc.prompt, tc.maxTokens)
			if r.err != nil {
				t.Fatal(r.err)
			}
			checkDeltas(t, r.deltas)
			if r.text() != tc.want {
				t.Fatalf("text\n got %q\nwant %q", r.text(), tc.want)
			}
			if r.res.FinishReason != tc.wantFinish || r.res.Usage == nil || *r.res.Usage != tc.wantUsage {
				t.Fatalf("result %+v usage %+v, want %q %+v", r.res, r.res.Usage, tc.wantFinish, tc.wantUsage)
			}
		})
	}
}

func TestRequestSent(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	r := stream(testCtx(t), newClient(srv.URL, nil), "hello [[fake tokens=2]]", 16)
	if r.err != nil {
		t.Fatal(r.err)
	}
	got, _ := srv.LastRequest()
	if got.Model != "fake-mini" || !got.Stream || !got.IncludeUsage || got.MaxTokens != 16 ||
		len(got.Messages) != 2 || got.Messages[0] != (fakeai.Message{Role: "system", Content: "You are terse."}) ||
		got.Messages[1].Role != "user" || got.Header.Get("Authorization") != "Bearer "+testKey {
		t.Fatalf("request %+v", got)
	}
	// Reasoning models refuse max_tokens: max_completion_tokens is sent.
	req := request("[[fake tokens=9]]")
	req.Model, req.MaxTokens = "o3-mini", 5
	var text strings.Builder
	res, err := newClient(srv.URL, nil).Stream(testCtx(t), req, func(s string) { text.WriteString(s) })
	if got, _ := srv.LastRequest(); err != nil || got.Model != "o3-mini" || got.MaxTokens != 5 || res.FinishReason != "length" {
		t.Fatalf("o3-mini: err %v, request %+v, result %+v", err, got, res)
	}
}

// TestReasoningEffortSent: a request's ReasoningEffort reaches OpenAI's
// reasoning models as reasoning_effort (beside max_completion_tokens);
// other models, which may refuse the field, never see it.
func TestReasoningEffortSent(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	c := newClient(srv.URL, nil)
	tests := []struct{ model, effort, want string }{
		{"o4-mini", "low", "low"},
		{"gpt-5-nano", "minimal", "minimal"},
		{"o3", "", ""},
		{"fake-mini", "low", ""},
		{"deepseek-reasoner", "low", ""},
	}
	for _, tc := range tests {
		req := request("[[fake tokens=2]] " + tc.model)
		req.Model, req.ReasoningEffort, req.MaxTokens = tc.model, tc.effort, 64
		if _, err := c.Stream(testCtx(t), req, func(string) {}); err != nil {
			t.Fatal(err)
		}
		rec, _ := srv.LastRequest()
		if rec.Model != tc.model || rec.ReasoningEffort != tc.want || rec.MaxTokens != 64 {
			t.Errorf("%s with effort %q: upstream saw %s", tc.model, tc.effort, rec.Body)
		}
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		prompt   string
		wantKind llm.ErrorKind // "" for success
		status   int
		requests int64
	}{
		{"429 once then success", "[[fake fault=429 times=1]]", "", 0, 2},
		{"429 with Retry-After past RetryMax is not retried", "[[fake fault=429 times=1 retry_after=30]]", llm.KindRateLimited, 429, 1},
		{"429 always", "[[fake fault=429 retry_after=10ms]]", llm.KindRateLimited, 429, 3},
		{"503 twice then success", "[[fake fault=503 times=2]]", "", 0, 3},
		{"500 always", "[[fake fault=500]]", llm.KindUpstream, 500, 3},
		{"408 once then success", "[[fake fault=408 times=1]]", "", 0, 2},
		{"408 always is a timeout", "[[fake fault=408]]", llm.KindTimeout, 408, 3},
		{"400 is not retried", "[[fake fault=400]]", llm.KindBadRequest, 400, 1},
		{"404 is not retried", "[[fake fault=404]]", llm.KindBadRequest, 404, 1},
		{"cut before the first token is retried", "[[fake fault=cut_mid after=0 times=1]]", "", 0, 2},
		{"reset before the first token is retried", "[[fake fault=reset_mid after=0 times=1]]", "", 0, 2},
		{"malformed before the first token is not retried", "[[fake fault=malformed after=0]]", llm.KindMalformed, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 5}})
			start := time.Now()
			r := stream(testCtx(t), newClient(srv.URL, nil), tc.prompt, 0)
			if elapsed := time.Since(start); elapsed > 20*time.Second { // the longest Retry-After is 30 s
				t.Errorf("took %v: a long Retry-After was waited", elapsed)
			}
			if got := srv.Requests(); got != tc.requests {
				t.Errorf("server saw %d requests, want %d", got, tc.requests)
			}
			if tc.wantKind == "" {
				if r.err != nil || r.text() != fakeai.ExpectedText(fakeai.Config{Tokens: 5}) {
					t.Fatalf("err %v, text %q", r.err, r.text())
				}
				return
			}
			var e *llm.Error
			if !errors.As(r.err, &e) || e.Kind != tc.wantKind || e.Status != tc.status || e.Message == "" {
				t.Fatalf("err %#v, want kind %s status %d", r.err, tc.wantKind, tc.status)
			}
			if len(r.deltas) != 0 {
				t.Fatalf("deltas %q from a failed request", r.deltas)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	var dials atomic.Int64
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}}
	c := newClient("http://"+addr+"/v1", func(o *openai.Options) { o.HTTPClient = &http.Client{Transport: tr} })
	r := stream(testCtx(t), c, "hi", 0)
	if llm.KindOf(r.err) != llm.KindConnection {
		t.Fatalf("err %v, want connection", r.err)
	}
	if dials.Load() != 3 {
		t.Fatalf("%d dials, want 1 + 2 retries", dials.Load())
	}
}

// TestIdleTimeoutCountsFromLastChunk: the idle timeout is the longest
// pause between two chunks, not the answer's length: an answer that takes
// several idle timeouts in all, each chunk coming well within one, ends
// whole, and one that then stops is cut about one idle timeout after its
// last chunk (the first-token timeout, much longer, does not delay it).
func TestIdleTimeoutCountsFromLastChunk(t *testing.T) {
	t.Parallel()
	// Chunks 80 ms apart leave the idle timeout a margin of almost two
	// seconds (250 ms, then 500 ms, were each overrun once under -race on
	// a loaded CI machine); 60 of them take over two idle timeouts in all.
	const idle = 2 * time.Second
	tests := []struct {
		name, prompt string
		want         string
		kind         llm.ErrorKind // "" for no error
	}{
		{"flowing", "[[fake tokens=60 delay=80ms]]", fakeai.ExpectedText(fakeai.Config{Tokens: 60}), ""},
		{"stops", "[[fake tokens=12 delay=80ms after=8 fault=hang_mid]]",
			fakeai.ExpectedPrefix(fakeai.Config{Tokens: 12}, 8), llm.KindTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{})
			c := newClient(srv.URL, func(o *openai.Options) { o.IdleTimeout = idle })
			r := stream(testCtx(t), c, tc.prompt, 0)
			if llm.KindOf(r.err) != tc.kind || (tc.kind == "" && r.err != nil) {
				t.Fatalf("err %v, want kind %q", r.err, tc.kind)
			}
			if r.text() != tc.want {
				t.Fatalf("text %q, want %q", r.text(), tc.want)
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prompt  string
		opts    func(*openai.Options)
		partial string
	}{
		{"hang before the first token", "[[fake tokens=10 fault=hang_first]]",
			func(o *openai.Options) { o.FirstTokenTimeout = 300 * time.Millisecond }, ""},
		{"slow first token", "[[fake tokens=10 first_delay=20s]]",
			func(o *openai.Options) { o.FirstTokenTimeout = 300 * time.Millisecond }, ""},
		// 2 s: the 4 tokens before the hang must each come within it.
		{"hang mid-stream", "[[fake tokens=10 after=4 fault=hang_mid]]",
			func(o *openai.Options) { o.IdleTimeout = 2 * time.Second },
			fakeai.ExpectedPrefix(fakeai.Config{Tokens: 10}, 4)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{})
			start := time.Now()
			r := stream(testCtx(t), newClient(srv.URL, tc.opts), tc.prompt, 0)
			if llm.KindOf(r.err) != llm.KindTimeout {
				t.Fatalf("err %v, want timeout", r.err)
			}
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Fatalf("timeout took %v", elapsed)
			}
			if r.text() != tc.partial || srv.Requests() != 1 {
				t.Fatalf("partial %q (want %q), %d requests", r.text(), tc.partial, srv.Requests())
			}
			// The upstream request was really aborted.
			if err := srv.WaitAbort(testCtx(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestMidStreamFailures(t *testing.T) {
	t.Parallel()
	partial := fakeai.ExpectedPrefix(fakeai.Config{Tokens: 10}, 5)
	tests := []struct {
		fault string
		kind  llm.ErrorKind
		exact bool // the partial text is exactly the 5 tokens sent
	}{
		{"cut_mid", llm.KindConnection, true},
		{"reset_mid", llm.KindConnection, false}, // an RST may drop unread bytes
		{"end_mid", llm.KindConnection, true},
		{"malformed", llm.KindMalformed, true},
		{"error_mid", llm.KindUpstream, true},
		{"error_chunk", llm.KindUpstream, true},
		// llama.cpp: an "error" field line, then [DONE]; it passed for a
		// complete answer.
		{"error_event", llm.KindUpstream, true},
		// "event:" lines before the error hid its message from go-openai.
		{"error_mid events=true", llm.KindUpstream, true},
	}
	for _, tc := range tests {
		t.Run(tc.fault, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{})
			r := stream(testCtx(t), newClient(srv.URL, nil), "[[fake tokens=10 after=5 delay=2ms split=1 fault="+tc.fault+"]]", 0)
			if llm.KindOf(r.err) != tc.kind {
				t.Fatalf("err %v, want %s", r.err, tc.kind)
			}
			checkDeltas(t, r.deltas)
			if tc.exact && r.text() != partial || !strings.HasPrefix(partial, r.text()) {
				t.Fatalf("partial text %q, want %q", r.text(), partial)
			}
			if srv.Requests() != 1 {
				t.Fatalf("%d requests: retried after the first token", srv.Requests())
			}
		})
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	c := newClient(srv.URL, nil)
	cause := errors.New("user pressed stop")
	ctx, cancel := context.WithCancelCause(testCtx(t))
	var n int
	var cancelledAt time.Time
	// 6000 tokens 5 ms apart take 30 s: a Stream that ran on after the
	// cancel would return far past the 10 s bound below.
	req := llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "[[fake tokens=6000 delay=5ms]]"}}}
	_, err := c.Stream(ctx, req, func(string) {
		if n++; n == 3 {
			cancelledAt = time.Now()
			cancel(cause)
		}
	})
	if since := time.Since(cancelledAt); since > 10*time.Second {
		t.Fatalf("returned %v after cancel", since)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) || llm.KindOf(err) != "" {
		t.Fatalf("err %v, want context.Canceled and the cause", err)
	}
	if err := srv.WaitAbort(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	c := newClient(srv.URL, func(o *openai.Options) { o.RetryMax = time.Minute })
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan run, 1)
	go func() { done <- stream(ctx, c, "[[fake fault=429 retry_after=60]]", 0) }()
	for srv.Requests() < 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case r := <-done:
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("err %v", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stream kept waiting out Retry-After after cancel")
	}
}

func TestErrorsNeverShowTheKey(t *testing.T) {
	t.Parallel()
	// The fake repeats a wrong key in its 401 body, as careless upstreams do.
	srv := fakeai.Start(t, fakeai.Options{APIKey: "sk-the-right-one"})
	c := newClient(srv.URL, nil)
	r := stream(testCtx(t), c, "hi", 0)
	var e *llm.Error
	if !errors.As(r.err, &e) || e.Kind != llm.KindBadRequest || e.Status != 401 {
		t.Fatalf("err %v", r.err)
	}
	if strings.Contains(e.Error(), testKey) || strings.Contains(e.Message, testKey) || strings.Contains(e.Message, "0123456789") {
		t.Fatalf("error shows the key: %q", e.Error())
	}
	if srv.Requests() != 1 {
		t.Fatalf("%d requests: a 401 was retried", srv.Requests())
	}
	if _, err := c.Models(testCtx(t)); llm.KindOf(err) != llm.KindBadRequest || strings.Contains(err.Error(), testKey) {
		t.Fatalf("Models error %v", err)
	}
}

func TestModels(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Models: []string{"gpt-x", "llama-y"}})
	got, err := newClient(srv.URL, nil).Models(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.ModelInfo{{ID: "gpt-x", Name: "gpt-x"}, {ID: "llama-y", Name: "llama-y"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("models %+v", got)
	}
}

func TestConcurrentStreams(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 30, Delay: 2 * time.Millisecond, Split: true}})
	c := newClient(srv.URL, nil)
	want := fakeai.ExpectedText(fakeai.Config{Tokens: 30})
	errs := make(chan error, 100)
	for range 100 {
		go func() {
			r := stream(testCtx(t), c, "go", 0)
			if r.err == nil && r.text() != want {
				r.err = errors.New("wrong text " + r.text())
			}
			errs <- r.err
		}()
	}
	for range 100 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestKeepAliveComments: SSE comments an upstream sends to keep a stream
// alive while the model thinks (fakeai's pings: OpenRouter's
// ": OPENROUTER PROCESSING") are legal and do not fail the stream, however
// many arrive before the first token; go-openai alone fails one after
// 150 comments as malformed.
func TestKeepAliveComments(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	r := stream(testCtx(t), newClient(srv.URL, nil), "[[fake tokens=5 pings=1000]]", 0)
	if want := fakeai.ExpectedText(fakeai.Config{Tokens: 5}); r.err != nil || r.text() != want || r.res.FinishReason != "stop" {
		t.Fatalf("text %q finish %q err %v, want %q", r.text(), r.res.FinishReason, r.err, want)
	}
}

// TestConnectionReuse: sequential streams to one upstream over HTTP/1.1
// reuse one keep-alive connection. go-openai stops reading at [DONE],
// before the end of the chunked body; the client reads that end before
// closing the body, else every stream would open a new connection. The
// fake sends the end 20ms after [DONE] (end_delay), so a client that does
// not wait for it always loses the connection.
//
// The client waits for that end at most drainBound (attempt.go's
// drainTimeout): a stream held past it by a loaded machine may lose its
// connection, so only a stream that took less may not; the stream after
// it must then reuse the connection.
func TestConnectionReuse(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	fake := fakeai.New(fakeai.Options{})
	srv := httptest.NewUnstartedServer(fake)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(func() {
		fake.Close()
		srv.Close()
	})
	const drainBound = 250 * time.Millisecond
	c := newClient(srv.URL+"/v1", nil)
	quick := 0 // streams that took less than drainBound, so kept their connection
	prevQuick := false
	for i := range 10 {
		before, start := conns.Load(), time.Now()
		if r := stream(testCtx(t), c, "hi [[fake tokens=5 end_delay=20ms]]", 0); r.err != nil {
			t.Fatalf("stream %d: %v", i, r.err)
		}
		if opened := conns.Load() - before; i > 0 && prevQuick && opened != 0 {
			t.Fatalf("stream %d opened %d connections after stream %d ended within %v, want its connection", i, opened, i-1, drainBound)
		}
		prevQuick = time.Since(start) < drainBound
		if prevQuick {
			quick++
		}
	}
	if quick < 9 {
		t.Logf("%d of 10 streams took less than %v (a loaded machine): fewer connections checked", quick, drainBound)
	}
}

// TestDrainBounded: an upstream that never ends the body after [DONE]
// does not hold a finished answer back: the read of the end is bounded
// (a fraction of a second), and the answer is complete.
func TestDrainBounded(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	start := time.Now()
	r := stream(testCtx(t), newClient(srv.URL, nil), "hi [[fake tokens=3 end_delay=1h]]", 0)
	if r.err != nil || r.text() != fakeai.ExpectedText(fakeai.Config{Tokens: 3}) || r.res.FinishReason != "stop" {
		t.Fatalf("text %q finish %q err %v", r.text(), r.res.FinishReason, r.err)
	}
	if d := time.Since(start); d > 20*time.Second { // unbounded, it would hang until testCtx ends (60 s)
		t.Fatalf("the stream took %v", d)
	}
}

// TestCutAfterFinish: a stream that breaks after the finish reason,
// before the usage chunk and [DONE], ends a complete answer (its text
// whole and once, no usage), not a failure: the connection closed
// (fakeai's cut_end) or reset (reset_end), or the usage chunk cut off
// inside its JSON (malformed_end). One lost before it still fails.
func TestCutAfterFinish(t *testing.T) {
	t.Parallel()
	for _, fault := range []string{"cut_end", "reset_end", "malformed_end"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{})
			r := stream(testCtx(t), newClient(srv.URL, nil), "[[fake tokens=6 fault="+fault+"]]", 0)
			if want := fakeai.ExpectedText(fakeai.Config{Tokens: 6}); r.err != nil || r.text() != want || r.res.FinishReason != "stop" {
				t.Fatalf("text %q finish %q err %v, want %q", r.text(), r.res.FinishReason, r.err, want)
			}
			if r.res.Usage != nil {
				t.Fatalf("usage %+v from a stream cut before it", r.res.Usage)
			}
			if srv.Requests() != 1 {
				t.Fatalf("%d requests", srv.Requests())
			}
		})
	}
}

// TestBrokenAfterFinishNotComplete: a stream broken after its finish
// reason is a complete answer (TestCutAfterFinish) unless text followed
// an early finish reason (the answer was still coming when the body was
// cut) or the upstream itself reported an error after it: those fail as
// they would before the finish reason. Before, both were stored complete.
func TestBrokenAfterFinishNotComplete(t *testing.T) {
	t.Parallel()
	const early = "data: " + `{"choices":[{"index":0,"delta":{"content":"The first half"},"finish_reason":"stop"}]}` + "\n\n"
	tests := []struct {
		name string
		body string
		cut  bool // the body ends before its declared length: cut
		want llm.ErrorKind
	}{
		{"text after an early finish reason, then cut", early + "data: " + `{"choices":[{"index":0,"delta":{"content":" and more"}}]}` + "\n\n", true, llm.KindConnection},
		{"an error event after the finish reason", early + `data: {"error":{"message":"the model crashed","type":"server_error"}}` + "\n\ndata: [DONE]\n\n", false, llm.KindUpstream},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				if tc.cut {
					w.Header().Set("Content-Length", strconv.Itoa(len(tc.body)+100))
				}
				fmt.Fprint(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			r := stream(testCtx(t), newClient(srv.URL, nil), "hi", 0)
			if r.err == nil || llm.KindOf(r.err) != tc.want {
				t.Fatalf("text %q finish %q err %v (kind %s), want a %s failure", r.text(), r.res.FinishReason, r.err, llm.KindOf(r.err), tc.want)
			}
		})
	}
}

// TestSilentAfterFinish: an upstream that sends the finish reason (and
// its usage) but then neither [DONE] nor the end of the body, keeping the
// connection open, ends a complete answer, not a timeout: the idle
// timeout ends the wait for the rest, as a body cut after the finish
// reason does (TestCutAfterFinish). Before, the answer failed as 'The
// model stopped sending' with all its text there.
func TestSilentAfterFinish(t *testing.T) {
	t.Parallel()
	const ab = "data: " + `{"choices":[{"index":0,"delta":{"content":"a"}}]}` + "\n\n" + "data: " + `{"choices":[{"index":0,"delta":{"content":"b"}}]}` + "\n\n"
	tests := []struct {
		name, body, tail, want string
		finish                 string
		usage                  bool
	}{
		{"after the finish reason", ab, "", "ab", "stop", false},
		{"after the usage", ab, `data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}` + "\n\n", "ab", "stop", true},
		// The first-token timer ends the wait; a length cut explains an
		// empty answer ("stop" does not: TestEmptyStream).
		{"an answer without text", "", "", "", "length", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprint(w, tc.body+`data: {"choices":[{"index":0,"delta":{},"finish_reason":"`+tc.finish+`"}]}`+"\n\n"+tc.tail)
				w.(http.Flusher).Flush()
				<-r.Context().Done() // silent until the client leaves
			}))
			t.Cleanup(srv.Close)
			// 2 s: the finish reason must come within the first-token
			// timeout, which then ends the wait of the answer without text.
			c := newClient(srv.URL, func(o *openai.Options) {
				o.IdleTimeout, o.FirstTokenTimeout = 2*time.Second, 2*time.Second
			})
			r := stream(testCtx(t), c, "hi", 0)
			if r.err != nil || r.text() != tc.want || r.res.FinishReason != tc.finish || (r.res.Usage != nil) != tc.usage {
				t.Fatalf("text %q, finish %q, usage %v, err %v; want the whole answer", r.text(), r.res.FinishReason, r.res.Usage, r.err)
			}
		})
	}
}
