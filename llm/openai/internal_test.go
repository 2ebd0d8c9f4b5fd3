package openai

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"chatd/llm"
)

func TestClean(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, key, want string }{
		{"Incorrect API key provided: sk-abc123secret.", "sk-abc123secret", "Incorrect API key provided: [redacted]."},
		{"key sk-proj-AbC_d-123*** is wrong", "", "key [redacted] is wrong"},
		{"line one\nline two", "", "line one line two"},
		{"raw secret-token-value here", "secret-token-value", "raw [redacted] here"},
		{"This model's maximum context length; max_tokens, key x", "x", "This model's maximum context length; max_tokens, key [redacted]"},
		{strings.Repeat("é", 300), "", strings.Repeat("é", maxDetail) + "…"},
	}
	for _, tc := range tests {
		if got := clean(tc.in, newSecrets(Options{APIKey: tc.key})); got != tc.want {
			t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestCleanShowsPlainText: upstream text is shown without what would
// make it display as other text than it holds, as titles are (llm's
// PlainText): no control character but white space (collapsed), no
// bidirectional control, no format character a title refuses, and a cut
// between whole user-perceived characters.
func TestCleanShowsPlainText(t *testing.T) {
	t.Parallel()
	scotland := "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F"
	tests := []struct{ in, want string }{
		{"boom \u202e evil", "boom evil"},
		{"a\u202ab\u202cc \u2066d\u2069 \u200ee\u200f\u061c", "abc d e"},
		{"bell\a esc\x1b[31m del\x7f nul\x00 c1\u0085\u009b end", "bell esc[31m del nul c1 end"},
		{"tab\tnew\nline\r\nvt\vff\f.", "tab new line vt ff ."},
		{"zero\u200bwidth \ufeffbom soft\u00adhyphen \U000E0041tag \ufff9hidden\ufffb", "zerowidth bom softhyphen tag hidden"},
		{"line\u2028para\u2029end", "line para end"},
		{"bad \xff bytes", "bad bytes"},
		{"sk-ab\u200bcd1234 leaked", "[redacted] leaked"},
		{"family 👨\u200d👩\u200d👧 \u0645\u06cc\u200c\u062e " + scotland, "family 👨\u200d👩\u200d👧 \u0645\u06cc\u200c\u062e " + scotland},
		{"x" + strings.Repeat(scotland, 40), "x" + strings.Repeat(scotland, 28) + "…"},
		{"x" + strings.Repeat("\U0001F1EB\U0001F1F7", 120), "x" + strings.Repeat("\U0001F1EB\U0001F1F7", 99) + "…"},
	}
	for _, tc := range tests {
		got := clean(tc.in, nil)
		if got != tc.want {
			t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, r := range got {
			if unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Bidi_Control, r) || r == utf8.RuneError {
				t.Errorf("clean(%q) = %q holds %U", tc.in, got, r)
			}
		}
		if r, bad := llm.TitleProblem(got); bad {
			t.Errorf("clean(%q) = %q holds %U, a format character", tc.in, got, r)
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
		name string
		h    http.Header
		want time.Duration
	}{
		{"seconds", http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{"ms wins", http.Header{"Retry-After": {"2"}, "Retry-After-Ms": {"1500"}}, 1500 * time.Millisecond},
		{"words", http.Header{"Retry-After": {"soon"}}, 0},
		{"none", nil, 0},
		{"zero", http.Header{"Retry-After": {"0"}}, 0},
		// Huge values count as long: they converted or multiplied to a
		// negative duration, which was retried.
		{"huge ms", http.Header{"Retry-After-Ms": {"1e300"}}, maxRetryAfter},
		{"infinite ms", http.Header{"Retry-After-Ms": {"+Inf"}}, maxRetryAfter},
		{"infinity ms", http.Header{"Retry-After-Ms": {"Infinity"}}, maxRetryAfter},
		{"ms past a day", http.Header{"Retry-After-Ms": {"86400001"}}, maxRetryAfter},
		{"huge seconds", http.Header{"Retry-After": {"99999999999"}}, maxRetryAfter},
		{"seconds past uint64", http.Header{"Retry-After": {"99999999999999999999999"}}, maxRetryAfter},
		{"a day in seconds", http.Header{"Retry-After": {"86400"}}, maxRetryAfter},
		{"just under a day", http.Header{"Retry-After": {"86399"}}, 86399 * time.Second},
		// Neither negative nor NaN is a wait.
		{"NaN ms", http.Header{"Retry-After-Ms": {"NaN"}}, 0},
		{"negative ms", http.Header{"Retry-After-Ms": {"-5"}}, 0},
		{"-Inf ms", http.Header{"Retry-After-Ms": {"-Inf"}}, 0},
		{"NaN ms, seconds", http.Header{"Retry-After-Ms": {"NaN"}, "Retry-After": {"4"}}, 4 * time.Second},
		{"negative seconds", http.Header{"Retry-After": {"-5"}}, 0},
		{"signed seconds", http.Header{"Retry-After": {"+5"}}, 0},
		{"NaN seconds", http.Header{"Retry-After": {"NaN"}}, 0},
		{"fractional seconds", http.Header{"Retry-After": {"1.5"}}, 0},
		{"date in the past", http.Header{"Retry-After": {time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)}}, 0},
		{"date far ahead", http.Header{"Retry-After": {"Fri, 31 Dec 9999 23:59:59 GMT"}}, maxRetryAfter},
	}
	for _, tc := range tests {
		if got := retryAfter(tc.h); got != tc.want {
			t.Errorf("%s: retryAfter(%v) = %v, want %v", tc.name, tc.h, got, tc.want)
		}
	}
	date := http.Header{"Retry-After": {time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}}
	if got := retryAfter(date); got < 59*time.Minute || got > time.Hour {
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

// TestSecrets: what newSecrets collects from Options, and redact's one
// pass. The values of public headers (X-Title, HTTP-Referer) are no
// secrets: the app's name in an upstream's message stays.
func TestSecrets(t *testing.T) {
	t.Parallel()
	o := Options{
		APIKey:  "k1",
		BaseURL: "https://user:base-password@host/v1?code=base-code-value&api-version=2024-06-01",
		Headers: map[string]string{"Authorization": "Bearer token-abcdefgh", "X-Debug": "1", "X-Sig": "dact",
			"x-title": "chatd", "HTTP-Referer": "https://chat.example.com"},
		Query: map[string]string{"sig": "a b/c", "api-version": "2024-10-21"},
	}
	tests := []struct{ in, want string }{
		{"key k1", "key [redacted]"},                                         // the API key, however short,
		{"k1: k1k1 ok1 k1x, (k1)", "[redacted]: k1k1 ok1 k1x, ([redacted])"}, // where it is a word of its own
		{"got Bearer token-abcdefgh", "got [redacted]"},
		{"token token-abcdefgh alone", "token [redacted] alone"},
		{"sig a b/c, encoded a+b%2Fc", "sig [redacted], encoded [redacted]"},
		{"code base-code-value, password base-password", "code [redacted], password [redacted]"},
		{"version 2024-10-21 or 2024-06-01, debug 1", "version 2024-10-21 or 2024-06-01, debug 1"},
		{"sig dact", "sig [redacted]"}, // not inside "[redacted]" again
		{"app chatd at https://chat.example.com", "app chatd at https://chat.example.com"},
	}
	s := newSecrets(o)
	for _, tc := range tests {
		if got := s.redact(tc.in); got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSameServer: a redirect is followed within the server configured
// (its port written or not, http upgraded to https on the same hostname),
// never to another host or port, where the API key and the configured
// headers would go. Before, http to https on the same host was refused
// with the others.
func TestSameServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		from, to string
		want     bool
	}{
		{"https://h/v1/chat", "https://h/v2/chat", true},
		{"https://h:443/v1", "https://H/v1", true},
		{"http://h/v1", "https://h/v1", true},
		{"http://h:80/v1", "https://h:443/v1", true},
		{"http://h:8080/v1", "https://h:8443/v1", false},
		{"https://h/v1", "http://h/v1", false},
		{"https://h/v1", "https://h:8443/v1", false},
		{"http://127.0.0.1:1234/v1", "http://localhost:1234/v1", false},
		{"https://h/v1", "https://other/v1", false},
	} {
		from, _ := url.Parse(tc.from)
		to, _ := url.Parse(tc.to)
		if got := sameServer(to, from); got != tc.want {
			t.Errorf("%s -> %s: followed %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}

// TestRefusedSamplingForgotten: a sampling field a model's upstream
// refused is left out for refusedAge from its refusal, then sent again;
// with maxLearned models remembered, the lessons past refusedAge make
// room for a new one, and a new one finds no room among fresh ones.
func TestRefusedSamplingForgotten(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	now := t0
	k := newModelKinds(nil)
	k.now = func() time.Time { return now }
	k.refuse("o3-mini", "top_p")
	now = t0.Add(30 * time.Minute)
	k.refuse("o3-mini", "temperature")
	steps := []struct {
		at   time.Duration
		want string
	}{
		{59 * time.Minute, "temperature,top_p"},
		{time.Hour, "temperature"},
		{90 * time.Minute, ""},
	}
	for _, s := range steps {
		now = t0.Add(s.at)
		if got := strings.Join(k.refusedFields("o3-mini"), ","); got != s.want {
			t.Fatalf("at %v: refused %q, want %q", s.at, got, s.want)
		}
	}
	if len(k.refused) != 0 {
		t.Fatalf("%d models remembered after every lesson expired", len(k.refused))
	}

	for i := range maxLearned {
		k.refuse(fmt.Sprint("model-", i), "temperature")
	}
	k.refuse("o1", "temperature")
	if got := k.refusedFields("o1"); got != nil {
		t.Fatalf("o1 remembered beyond maxLearned fresh lessons: %v", got)
	}
	now = now.Add(time.Hour)
	k.refuse("o1", "temperature")
	if got := k.refusedFields("o1"); len(got) != 1 || len(k.refused) != 1 {
		t.Fatalf("o1 refused %v, %d models remembered; want temperature alone", got, len(k.refused))
	}
}
