package hub

import (
	"context"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/llm"
)

// finished is what one GenerationFinished call reported.
type finished struct{ status, upstreamKind string }

// finishMetrics records GenerationFinished calls.
type finishMetrics struct {
	nopMetrics
	calls chan finished
}

func (m finishMetrics) GenerationFinished(_, status, upstreamKind string, _ time.Duration, _ int, _ time.Duration) {
	m.calls <- finished{status, upstreamKind}
}

// TestFinishedUpstreamKind: GenerationFinished is given the model
// provider's failure apart from the status and code the done reports, so
// that chatd_upstream_errors_total counts only those. An answer whose
// final write failed ends error/unavailable and the duration limit's stop
// error/timeout, neither an upstream failure; a provider's error, a
// timeout of its own included, is one, also when the end of its answer
// could not be stored. Before, the done's code was passed for every
// answer ending in error, counted upstream: kind unavailable for a full
// disk, timeout for the server's own limit.
func TestFinishedUpstreamKind(t *testing.T) {
	t.Parallel()
	fail := func(kind llm.ErrorKind) func(context.Context, llm.Request, func(string)) (llm.Result, error) {
		return func(_ context.Context, _ llm.Request, onDelta func(string)) (llm.Result, error) {
			onDelta("partial")
			return llm.Result{}, &llm.Error{Kind: kind, Message: "the provider failed"}
		}
	}
	outlast := func(ctx context.Context, _ llm.Request, onDelta func(string)) (llm.Result, error) {
		onDelta("partial")
		<-ctx.Done()
		return llm.Result{}, context.Cause(ctx)
	}
	cases := []struct {
		name       string
		script     func(context.Context, llm.Request, func(string)) (llm.Result, error)
		maxDur     time.Duration
		finishErr  error
		wantStatus string
		wantCode   string // the done's
		wantKind   string
	}{
		{"completed", say("answer"), 0, nil, "complete", "", ""},
		{"final write failed", say("answer"), 0, notDurable{}, "error", protocol.CodeUnavailable, ""},
		{"duration limit", outlast, 20 * time.Millisecond, nil, "error", string(llm.KindTimeout), ""},
		{"upstream timeout", fail(llm.KindTimeout), 0, nil, "error", string(llm.KindTimeout), string(llm.KindTimeout)},
		{"upstream connection", fail(llm.KindConnection), 0, nil, "error", string(llm.KindConnection), string(llm.KindConnection)},
		{"upstream failed, its end not stored", fail(llm.KindConnection), 0, notDurable{}, "error", protocol.CodeUnavailable,
			string(llm.KindConnection)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := finishMetrics{calls: make(chan finished, 1)}
			e := newEnv(t, Options{Metrics: m, MaxDuration: tc.maxDur}, tc.script)
			e.writer.mu.Lock()
			e.writer.finishErr = tc.finishErr
			e.writer.mu.Unlock()
			sub := newSub("u")
			res := e.send(t, sub, "question")
			_, done := sub.textUntilDone(t, res.MessageID, 0)
			code := ""
			if done.Error != nil {
				code = done.Error.Code
			}
			if done.Status != tc.wantStatus || code != tc.wantCode {
				t.Fatalf("done %s/%q, want %s/%q", done.Status, code, tc.wantStatus, tc.wantCode)
			}
			select {
			case got := <-m.calls:
				if want := (finished{tc.wantStatus, tc.wantKind}); got != want {
					t.Fatalf("GenerationFinished(status %q, upstream kind %q), want %+v", got.status, got.upstreamKind, want)
				}
			case <-time.After(waitTimeout):
				t.Fatal("GenerationFinished not called")
			}
			if tc.finishErr == nil {
				if m := e.stored(t, res.MessageID); string(m.Status) != tc.wantStatus {
					t.Fatalf("stored %s, want %s", m.Status, tc.wantStatus)
				}
			}
		})
	}
}
