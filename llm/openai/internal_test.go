package openai

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestClean(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, key, want string }{
		{"Incorrect API key provided: sk-abc123secret.", "sk-abc123secret", "Incorrect API key provided: [redacted]."},
		{"key sk-proj-AbC_d-123*** is wrong", "", "key [redacted] is wrong"},
		{"line one\nline two", "", "line one line two"},
		{"raw secret-token-value here", "secret-token-value", "raw [redacted] here"},
		{strings.Repeat("é", 300), "", strings.Repeat("é", maxDetail) + "…"},
	}
	for _, tc := range tests {
		if got := clean(tc.in, tc.key); got != tc.want {
			t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestUTF8Joiner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pieces []string
		want   []string // what each push returns
		rest   string
	}{
		{[]string{"ab", "cd"}, []string{"ab", "cd"}, ""},
		{[]string{"h\xc3", "\xa9llo"}, []string{"h", "éllo"}, ""},
		{[]string{"\xf0\x9f", "\x99", "\x82!"}, []string{"", "", "🙂!"}, ""},
		{[]string{"x\xe4\xb8"}, []string{"x"}, "\ufffd"},
	}
	for _, tc := range tests {
		var j utf8Joiner
		for i, p := range tc.pieces {
			if got := j.push(p); got != tc.want[i] {
				t.Errorf("%q: push %d = %q, want %q", tc.pieces, i, got, tc.want[i])
			}
		}
		if got := j.flush(); got != tc.rest {
			t.Errorf("%q: flush = %q, want %q", tc.pieces, got, tc.rest)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{http.Header{"Retry-After": {"2"}, "Retry-After-Ms": {"1500"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{nil, 0},
	}
	for _, tc := range tests {
		if got := retryAfter(tc.h); got != tc.want {
			t.Errorf("retryAfter(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
	date := http.Header{"Retry-After": {time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}}
	if got := retryAfter(date); got < 59*time.Minute {
		t.Errorf("HTTP date: %v", got)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	c := New(Options{RetryBase: 100 * time.Millisecond, RetryMax: time.Second})
	for try, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		for range 20 {
			if d := c.backoff(try, 0); d < want/2 || d > want {
				t.Fatalf("try %d: %v outside [%v, %v]", try, d, want/2, want)
			}
		}
	}
	if d := c.backoff(0, time.Hour); d != time.Second {
		t.Fatalf("Retry-After not capped: %v", d)
	}
}

func TestDoneWatcher(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reads []string
		want  bool
	}{
		{[]string{"data: {}\n\n", "data: [DONE]\n\n"}, true},
		{[]string{"data: [DO", "NE]\n"}, true},
		{[]string{"data:[DONE]\r\n"}, true},
		{[]string{`data: {"content":"data: [DONE]"}` + "\n"}, false},
		{[]string{"data: {}\n\n"}, false},
	}
	for _, tc := range tests {
		var w doneWatcher
		for _, r := range tc.reads {
			w.scan([]byte(r))
		}
		if w.sawDone() != tc.want {
			t.Errorf("%q: sawDone %v", tc.reads, w.sawDone())
		}
	}
}
