package openai_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestRetryAfterPastRetryMax: a provider whose Retry-After asks for longer
// than RetryMax (20ms here) would refuse a retry sent sooner, so the
// request ends at once, the 429's message naming the provider's wait,
// where it was retried after RetryMax until its retries ran out; in every
// header form (seconds, an HTTP date, OpenAI's retry-after-ms), and for a
// 503 too. A wait within RetryMax is still waited and retried.
func TestRetryAfterPastRetryMax(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, marker string
		kind         llm.ErrorKind
		status       int
		requests     int64
		message      string // the end of the error's message
	}{
		{"both headers", "fault=429 retry_after=60", llm.KindRateLimited, 429, 1, "try again in 1m."},
		{"seconds", "fault=429 retry_after=60 retry_after_form=seconds", llm.KindRateLimited, 429, 1, "try again in 1m."},
		{"HTTP date", "fault=429 retry_after=60 retry_after_form=date", llm.KindRateLimited, 429, 1, "try again in 1m."},
		{"milliseconds", "fault=429 retry_after=1500ms retry_after_form=ms", llm.KindRateLimited, 429, 1, "try again in 2s."},
		{"503", "fault=503 retry_after=30 retry_after_form=seconds", llm.KindUpstream, 503, 1, "had an error; try again in 30s."},
		{"within RetryMax", "fault=429 retry_after=10ms retry_after_form=ms", llm.KindRateLimited, 429, 3, "try again in 1s."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
			r := stream(testCtx(t), newClient(srv.URL, nil), "[[fake "+tc.marker+"]]", 0)
			var e *llm.Error
			if !errors.As(r.err, &e) || e.Kind != tc.kind || e.Status != tc.status || !strings.HasSuffix(e.Message, tc.message) {
				t.Fatalf("err %v, want %s (HTTP %d) ending %q", r.err, tc.kind, tc.status, tc.message)
			}
			if got := srv.Requests(); got != tc.requests {
				t.Fatalf("server saw %d requests, want %d", got, tc.requests)
			}
		})
	}
}

// TestHugeRetryAfterNotRetried: a Retry-After too large for a duration
// (retry-after-ms 1e300, which converted to a negative one) asks for
// longer than RetryMax, so the request ends at once, where it was retried
// at once until its retries ran out.
func TestHugeRetryAfterNotRetried(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"retry-after-ms: 1e300", "retry-after-ms: +Inf", "Retry-After: 99999999999999999999"} {
		t.Run(h, func(t *testing.T) {
			t.Parallel()
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				name, value, _ := strings.Cut(h, ": ")
				w.Header().Set(name, value)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = w.Write([]byte(`{"error": {"message": "Slow down.", "type": "requests"}}`))
			}))
			t.Cleanup(srv.Close)
			r := stream(testCtx(t), newClient(srv.URL, nil), "hi", 0)
			var e *llm.Error
			if !errors.As(r.err, &e) || e.Kind != llm.KindRateLimited || !strings.HasSuffix(e.Message, "try again in 24h.") {
				t.Fatalf("err %v, want rate_limited naming a day", r.err)
			}
			if got := requests.Load(); got != 1 {
				t.Fatalf("server saw %d requests, want 1", got)
			}
		})
	}
}
