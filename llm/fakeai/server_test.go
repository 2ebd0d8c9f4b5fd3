package fakeai_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"chatd/llm/fakeai"
)

// chunk is a parsed streaming chunk.
type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
	TS int64 `json:"x_fake_ts"`
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// post sends a chat completion request and returns the response.
func post(t *testing.T, ctx context.Context, url string, body map[string]any, hdr map[string]string) *http.Response {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/chat/completions", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func streamBody(prompt string, usage bool) map[string]any {
	b := map[string]any{
		"model":    "fake-mini",
		"stream":   true,
		"messages": []map[string]any{{"role": "system", "content": "be brief"}, {"role": "user", "content": prompt}},
	}
	if usage {
		b["stream_options"] = map[string]any{"include_usage": true}
	}
	return b
}

// parseSSE splits a raw body into events and decodes them; done reports a
// final "data: [DONE]".
func parseSSE(t *testing.T, raw []byte) (chunks []chunk, done bool) {
	t.Helper()
	events := strings.Split(string(raw), "\n\n")
	if events[len(events)-1] != "" {
		t.Fatalf("body does not end with a blank line: %q", events[len(events)-1])
	}
	for _, ev := range events[:len(events)-1] {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("event is not one data line: %q", ev)
		}
		if done {
			t.Fatalf("event after [DONE]: %q", ev)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var c chunk
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		chunks = append(chunks, c)
	}
	return chunks, done
}

func TestStreamFormat(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	ctx := testCtx(t)
	before := fakeai.MonotonicNanos()
	resp := post(t, ctx, srv.URL, streamBody("one two three [[fake tokens=25]]", true), nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	chunks, done := parseSSE(t, raw)
	if !done {
		t.Fatal("no [DONE]")
	}
	if len(chunks) != 25+3 {
		t.Fatalf("got %d chunks, want role + 25 tokens + finish + usage", len(chunks))
	}
	var text strings.Builder
	last := before
	for i, c := range chunks {
		if c.Object != "chat.completion.chunk" || c.ID != chunks[0].ID || c.Model != "fake-mini" || c.Created == 0 {
			t.Fatalf("chunk %d header: %+v", i, c)
		}
		if c.TS < last {
			t.Fatalf("chunk %d x_fake_ts %d went back from %d", i, c.TS, last)
		}
		last = c.TS
		if i < len(chunks)-1 && c.Usage != nil {
			t.Fatalf("chunk %d has usage", i)
		}
		if len(c.Choices) == 1 && c.Choices[0].Delta.Content != nil {
			text.WriteString(*c.Choices[0].Delta.Content)
		}
	}
	if chunks[0].Choices[0].Delta.Role != "assistant" {
		t.Fatalf("first chunk has no role: %+v", chunks[0])
	}
	if got, want := text.String(), fakeai.ExpectedText(fakeai.Config{Tokens: 25}); got != want {
		t.Fatalf("text\n got %q\nwant %q", got, want)
	}
	fin := chunks[len(chunks)-2]
	if fin.Choices[0].FinishReason == nil || *fin.Choices[0].FinishReason != "stop" {
		t.Fatalf("finish chunk: %+v", fin)
	}
	u := chunks[len(chunks)-1]
	if len(u.Choices) != 0 || u.Usage == nil || u.Usage.CompletionTokens != 25 ||
		u.Usage.PromptTokens != 5 || u.Usage.TotalTokens != 30 {
		t.Fatalf("usage chunk: %+v", u)
	}
	// The usage:null fields are present when usage was asked for.
	if !bytes.Contains(raw, []byte(`"finish_reason":null}],"usage":null,"x_fake_ts":`)) {
		t.Fatalf("chunks lack usage:null: %s", raw[:200])
	}
}

func TestStreamSettings(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 7}})
	tests := []struct {
		name       string
		prompt     string
		headers    map[string]string
		maxTokens  int
		wantText   string
		wantFinish string
	}{
		{"defaults", "hi", nil, 0, fakeai.ExpectedText(fakeai.Config{Tokens: 7}), "stop"},
		{"marker", "hi [[fake tokens=3]]", nil, 0, fakeai.ExpectedText(fakeai.Config{Tokens: 3}), "stop"},
		{"header", "hi", map[string]string{"X-Fake-Tokens": "4"}, 0, fakeai.ExpectedText(fakeai.Config{Tokens: 4}), "stop"},
		{"marker beats header", "[[fake tokens=2]]", map[string]string{"X-Fake-Tokens": "4"}, 0, fakeai.ExpectedText(fakeai.Config{Tokens: 2}), "stop"},
		{"max tokens", "hi", nil, 5, fakeai.ExpectedText(fakeai.Config{Tokens: 5}), "length"},
		{"markdown", "[[fake mode=markdown tokens=0]]", nil, 0, fakeai.ExpectedText(fakeai.Config{Mode: fakeai.ModeMarkdown}), "stop"},
		{"xss", "[[fake mode=xss tokens=0]]", nil, 0, fakeai.ExpectedText(fakeai.Config{Mode: fakeai.ModeXSS}), "stop"},
		{"tag", "[[fake tag=req-42 tokens=3]]", nil, 0, "req-42 " + fakeai.ExpectedText(fakeai.Config{Tokens: 3}), "stop"},
		{"finish", "[[fake tokens=3 finish=model_length]]", nil, 0, fakeai.ExpectedText(fakeai.Config{Tokens: 3}), "model_length"},
		{"finish under max tokens", "[[fake finish=content_filter]]", nil, 5, fakeai.ExpectedText(fakeai.Config{Tokens: 5}), "length"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := streamBody(tc.prompt, false)
			if tc.maxTokens > 0 {
				body["max_tokens"] = tc.maxTokens
			}
			raw, _ := io.ReadAll(post(t, testCtx(t), srv.URL, body, tc.headers).Body)
			chunks, done := parseSSE(t, raw)
			var text strings.Builder
			finish := ""
			for _, c := range chunks {
				if c.Choices[0].Delta.Content != nil {
					text.WriteString(*c.Choices[0].Delta.Content)
				}
				if f := c.Choices[0].FinishReason; f != nil {
					finish = *f
				}
			}
			if !done || text.String() != tc.wantText || finish != tc.wantFinish {
				t.Fatalf("done=%v finish=%q text\n got %q\nwant %q", done, finish, text.String(), tc.wantText)
			}
		})
	}
}

func TestDocumentModes(t *testing.T) {
	t.Parallel()
	md := fakeai.ExpectedText(fakeai.Config{Mode: fakeai.ModeMarkdown})
	for _, want := range []string{"```go\n", "```python\n", "- first item", "| Name | Value |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	xss := fakeai.ExpectedText(fakeai.Config{Mode: fakeai.ModeXSS})
	for _, want := range []string{"<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "](javascript:alert(1))"} {
		if !strings.Contains(xss, want) {
			t.Errorf("xss lacks %q", want)
		}
	}
	// Asking for more tokens than a document has repeats it.
	n := len(fakeai.Tokens(fakeai.Config{Mode: fakeai.ModeMarkdown}))
	long := fakeai.ExpectedText(fakeai.Config{Mode: fakeai.ModeMarkdown, Tokens: 2 * n})
	if long != md+"\n"+md {
		t.Errorf("repeated document is %q", long)
	}
}

// TestRetryAfterForms: retry_after_form sends a 429's or a 503's wait in
// one of the header forms providers use.
func TestRetryAfterForms(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	ctx := testCtx(t)
	tests := []struct {
		marker          string
		seconds, millis string // "": absent; "date": an HTTP date
	}{
		{"fault=429 retry_after=1500ms", "2", "1500"},
		{"fault=429 retry_after=1500ms retry_after_form=both", "2", "1500"},
		{"fault=429 retry_after=1500ms retry_after_form=seconds", "2", ""},
		{"fault=503 retry_after=90 retry_after_form=date", "date", ""},
		{"fault=429 retry_after=1500ms retry_after_form=ms", "", "1500"},
		{"fault=500 retry_after=2", "", ""},
	}
	for _, tc := range tests {
		resp := post(t, ctx, srv.URL, streamBody("[[fake "+tc.marker+"]]", false), nil)
		resp.Body.Close()
		got, ms := resp.Header.Get("Retry-After"), resp.Header.Get("retry-after-ms")
		if tc.seconds == "date" {
			when, err := http.ParseTime(got)
			if d := time.Until(when); err != nil || d < 88*time.Second || d > 91*time.Second {
				t.Errorf("%s: Retry-After %q, want an HTTP date about 90s ahead", tc.marker, got)
			}
			got = "date"
		}
		if got != tc.seconds || ms != tc.millis {
			t.Errorf("%s: Retry-After %q, retry-after-ms %q; want %q, %q", tc.marker, got, ms, tc.seconds, tc.millis)
		}
	}
}

func TestStatusFaults(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	ctx := testCtx(t)
	prompt := "[[fake fault=429 times=2 retry_after=1500ms]]"
	for i, want := range []int{429, 429, 200} {
		resp := post(t, ctx, srv.URL, streamBody(prompt, false), nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, want)
		}
		if want == 429 {
			if resp.Header.Get("Retry-After") != "2" || resp.Header.Get("retry-after-ms") != "1500" {
				t.Fatalf("retry headers: %v", resp.Header)
			}
			var e struct {
				Error struct{ Message, Type string }
			}
			if json.Unmarshal(body, &e) != nil || e.Error.Message == "" {
				t.Fatalf("error body %q", body)
			}
		}
	}
	resp := post(t, ctx, srv.URL, streamBody("[[fake fault=503]]", false), nil)
	if resp.StatusCode != 503 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	resp = post(t, ctx, srv.URL, streamBody("[[fake bogus=1]]", false), nil)
	if resp.StatusCode != 400 {
		t.Fatalf("unknown key: status %d", resp.StatusCode)
	}
	resp = post(t, ctx, srv.URL, streamBody("[[fake fault=error_body]]", false), nil)
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Message, Code string }
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &e) != nil || e.Error.Code != "rate_limit_exceeded" ||
		bytes.HasSuffix(body, []byte("\n")) {
		t.Fatalf("error_body: status %d, body %q", resp.StatusCode, body)
	}
	if got := srv.Requests(); got != 6 {
		t.Fatalf("Requests() = %d, want 6", got)
	}
}

func TestMidStreamFaults(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	tests := []struct {
		fault   string
		wantErr error  // what reading the body fails with (nil: it does not)
		tail    string // what the body ends with
		absent  string // what the body must not hold
	}{
		{"cut_mid", io.ErrUnexpectedEOF, "", "[DONE]"},
		{"cut_end", io.ErrUnexpectedEOF, "}\n\n", "[DONE]"},
		{"reset_end", syscall.ECONNRESET, "}\n\n", "[DONE]"},
		{"malformed_end", nil, `"usage":{"prompt_tokens":3,` + "\n\ndata: [DONE]\n\n", `"completion_tokens"`},
		{"malformed", nil, `{"content":"bro` + "\n\ndata: [DONE]\n\n", `"finish_reason":"stop"`},
		{"error_mid", nil, `"type":"server_error"}}` + "\n\n", "[DONE]"},
		{"end_mid", nil, "}\n\n", "[DONE]"},
		{"error_chunk", nil, "}\n\ndata: [DONE]\n\n", `"finish_reason":"stop"`},
	}
	for _, tc := range tests {
		t.Run(tc.fault, func(t *testing.T) {
			t.Parallel()
			resp := post(t, testCtx(t), srv.URL, streamBody("[[fake tokens=10 after=4 fault="+tc.fault+"]]", false), nil)
			raw, err := io.ReadAll(resp.Body)
			if (err != nil) != (tc.wantErr != nil) || (err != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("read error %v, want %v", err, tc.wantErr)
			}
			if !strings.HasSuffix(string(raw), tc.tail) || strings.Contains(string(raw), tc.absent) {
				t.Fatalf("body ends %q", raw[max(0, len(raw)-120):])
			}
			const errorChunk = `"finish_reason":"error","native_finish_reason":"error"}],"error":{"code":502,"message":"Provider disconnected unexpectedly"}`
			if tc.fault == "error_chunk" && !strings.Contains(string(raw), errorChunk) {
				t.Fatalf("body lacks the error chunk: %s", raw)
			}
			if strings.HasSuffix(tc.fault, "_end") && !strings.Contains(string(raw), `"finish_reason":"stop"`) {
				t.Fatalf("body lacks the finish reason: %s", raw)
			}
			want := fakeai.ExpectedPrefix(fakeai.Config{Tokens: 10}, 4)
			if !strings.Contains(string(raw), jsonContent(want[len(want)-6:])) {
				t.Fatalf("body lacks the 4th token: %s", raw)
			}
		})
	}
}

// jsonContent returns s as it appears inside a JSON string.
func jsonContent(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func TestHangAndAbort(t *testing.T) {
	t.Parallel()
	for _, fault := range []string{"hang_first", "hang_mid"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{})
			ctx, cancel := context.WithCancel(testCtx(t))
			resp := post(t, ctx, srv.URL, streamBody("[[fake tokens=10 after=3 fault="+fault+"]]", false), nil)
			buf := make([]byte, 64)
			if _, err := resp.Body.Read(buf); err != nil {
				t.Fatal(err)
			}
			cancel()
			if err := srv.WaitAbort(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if srv.Aborts() != 1 {
				t.Fatalf("Aborts() = %d", srv.Aborts())
			}
		})
	}
}

// TestHangEnd: hang_end sends the whole answer and its finish reason,
// then only comments, neither usage nor [DONE], until the client leaves.
func TestHangEnd(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	ctx, cancel := context.WithCancel(testCtx(t))
	resp := post(t, ctx, srv.URL, streamBody("[[fake tokens=3 fault=hang_end]]", true), nil)
	var body strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for pings := 0; pings < 3 && sc.Scan(); {
		body.WriteString(sc.Text() + "\n")
		if sc.Text() == ": ping" {
			pings++
		}
	}
	cancel()
	if err := srv.WaitAbort(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	before, _, _ := strings.Cut(body.String(), ": ping")
	if !strings.Contains(before, `"finish_reason":"stop"`) || strings.Contains(body.String(), "[DONE]") ||
		strings.Contains(body.String(), `"usage":{`) {
		t.Fatalf("body %q", body.String())
	}
}

// recordingListener records the bytes of every Write on its connections.
type recordingListener struct {
	net.Listener
	mu     sync.Mutex
	writes [][]byte
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return &recordingConn{Conn: c, l: l}, err
}

type recordingConn struct {
	net.Conn
	l *recordingListener
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes = append(c.l.writes, append([]byte(nil), p...))
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

func TestSplitUTF8AcrossWrites(t *testing.T) {
	t.Parallel()
	srv := fakeai.New(fakeai.Options{})
	hs := httptest.NewUnstartedServer(srv)
	rl := &recordingListener{Listener: hs.Listener}
	hs.Listener = rl
	hs.Start()
	t.Cleanup(func() { srv.Close(); hs.Close() })

	resp := post(t, testCtx(t), hs.URL+"/v1", streamBody("[[fake tokens=16 split=1]]", false), nil)
	raw, _ := io.ReadAll(resp.Body)
	chunks, _ := parseSSE(t, raw)
	var text strings.Builder
	for _, c := range chunks {
		if c.Choices[0].Delta.Content != nil {
			text.WriteString(*c.Choices[0].Delta.Content)
		}
	}
	if want := fakeai.ExpectedText(fakeai.Config{Tokens: 16}); text.String() != want {
		t.Fatalf("text %q, want %q", text.String(), want)
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	split := map[int]bool{} // widths of the characters cut at a write's end
	for _, w := range rl.writes {
		w = bytes.TrimSuffix(w, []byte("\r\n")) // the chunked encoding's framing
		i := len(w) - 1
		for i > 0 && !utf8.RuneStart(w[i]) {
			i--
		}
		if i >= 0 && w[i] >= 0xC0 && !utf8.FullRune(w[i:]) {
			switch {
			case w[i] >= 0xF0:
				split[4] = true
			case w[i] >= 0xE0:
				split[3] = true
			default:
				split[2] = true
			}
		}
	}
	for _, n := range []int{2, 3, 4} {
		if !split[n] {
			t.Errorf("no %d-byte character was split across writes (%d writes)", n, len(rl.writes))
		}
	}
}

func TestStamps(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	before := fakeai.MonotonicNanos()
	resp := post(t, testCtx(t), srv.URL, streamBody("[[fake tokens=6 stamp=all tag=x1]]", false), nil)
	raw, _ := io.ReadAll(resp.Body)
	chunks, _ := parseSSE(t, raw)
	var text strings.Builder
	for _, c := range chunks {
		if c.Choices[0].Delta.Content != nil {
			text.WriteString(*c.Choices[0].Delta.Content)
		}
	}
	stamps := fakeai.ParseStamps(text.String())
	if len(stamps) != 6 {
		t.Fatalf("%d stamps in %q", len(stamps), text.String())
	}
	after := fakeai.MonotonicNanos()
	for i, s := range stamps {
		if s < before || s > after || (i > 0 && s < stamps[i-1]) {
			t.Fatalf("stamp %d = %d outside [%d, %d]", i, s, before, after)
		}
	}
	if got, want := fakeai.StripStamps(text.String()), fakeai.ExpectedText(fakeai.Config{Tokens: 6, Tag: "x1"}); got != want {
		t.Fatalf("stripped %q, want %q", got, want)
	}
	if !strings.HasPrefix(text.String(), "[ts:") {
		t.Fatalf("first token does not start with its stamp: %q", text.String())
	}
}

func TestNonStreaming(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	body := streamBody("hello [[fake tokens=9 mode=xss]]", false)
	body["stream"] = false
	body["max_tokens"] = 5
	resp := post(t, testCtx(t), srv.URL, body, nil)
	var got struct {
		Object  string
		Choices []struct {
			Message      struct{ Role, Content string }
			FinishReason string `json:"finish_reason"`
		}
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := fakeai.ExpectedPrefix(fakeai.Config{Tokens: 9, Mode: fakeai.ModeXSS}, 5)
	if got.Object != "chat.completion" || got.Choices[0].Message.Content != want ||
		got.Choices[0].FinishReason != "length" || got.Usage.CompletionTokens != 5 {
		t.Fatalf("response %+v, want content %q", got, want)
	}
}

func TestModelsAndAuth(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: "sk-test-secret", Models: []string{"a", "b"}})
	ctx := testCtx(t)
	get := func(key string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/models", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := get("wrong"); resp.StatusCode != 401 {
		t.Fatalf("wrong key: %d", resp.StatusCode)
	}
	var list struct {
		Object string
		Data   []struct{ ID, Object string }
	}
	if err := json.NewDecoder(get("sk-test-secret").Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if list.Object != "list" || len(list.Data) != 2 || list.Data[0].ID != "a" || list.Data[1].Object != "model" {
		t.Fatalf("models %+v", list)
	}
	if srv.ModelListRequests() != 2 {
		t.Fatalf("ModelListRequests() = %d", srv.ModelListRequests())
	}
	srv.SetModelsStatus(503)
	if resp := get("sk-test-secret"); resp.StatusCode != 503 {
		t.Fatalf("SetModelsStatus(503): %d", resp.StatusCode)
	}
	srv.SetModelsStatus(0)
	if resp := get("sk-test-secret"); resp.StatusCode != 200 {
		t.Fatalf("SetModelsStatus(0): %d", resp.StatusCode)
	}
}

func TestRecorded(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{RecordLimit: 2})
	ctx := testCtx(t)
	for _, p := range []string{"first", "second", "third [[fake tokens=1]]"} {
		body := streamBody(p, true)
		body["max_tokens"] = 12
		_, _ = io.ReadAll(post(t, ctx, srv.URL, body, map[string]string{"X-Fake-Delay": "1ms"}).Body)
	}
	recs := srv.Recorded()
	if len(recs) != 2 || recs[0].Seq != 2 || recs[1].Seq != 3 {
		t.Fatalf("recorded %+v", recs)
	}
	last, ok := srv.LastRequest()
	if !ok || last.Model != "fake-mini" || len(last.Messages) != 2 || last.Messages[1].Content != "third [[fake tokens=1]]" ||
		last.Messages[0].Role != "system" || !last.IncludeUsage || last.MaxTokens != 12 || !last.Stream ||
		last.Config.Tokens != 1 || last.Config.Delay != time.Millisecond {
		t.Fatalf("last request %+v", last)
	}
}

func TestManyConcurrentStreams(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 20, Delay: 5 * time.Millisecond}})
	ctx := testCtx(t)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 300}}
	t.Cleanup(client.CloseIdleConnections)
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for range 300 {
		wg.Go(func() {
			b, _ := json.Marshal(streamBody("go", false))
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/chat/completions", bytes.NewReader(b))
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Contains(raw, []byte("data: [DONE]")) || strings.Count(string(raw), `"content":`) != 21 {
				errs <- errors.New("incomplete stream")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if srv.Requests() != 300 || srv.ActiveStreams() != 0 || srv.Aborts() != 0 {
		t.Fatalf("requests %d active %d aborts %d", srv.Requests(), srv.ActiveStreams(), srv.Aborts())
	}
}

// TestPings: pings=N sends N keep-alive comments before the first chunk;
// the stream after them is the usual one.
func TestPings(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	raw, _ := io.ReadAll(post(t, testCtx(t), srv.URL, streamBody("[[fake tokens=3 pings=3]]", false), nil).Body)
	pings := strings.Repeat(": OPENROUTER PROCESSING\n\n", 3)
	rest, ok := bytes.CutPrefix(raw, []byte(pings))
	if !ok {
		t.Fatalf("body does not start with 3 pings: %q", raw[:min(len(raw), 120)])
	}
	if chunks, done := parseSSE(t, rest); !done || len(chunks) != 5 {
		t.Fatalf("%d chunks after the pings, done %v", len(chunks), done)
	}
}

// TestEndDelay: end_delay=D holds the end of the body after [DONE]; a
// client that leaves then is not counted as an abort.
func TestEndDelay(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	resp := post(t, testCtx(t), srv.URL, streamBody("[[fake tokens=2 end_delay=1h]]", false), nil)
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("no [DONE] before the end: %v", err)
		}
		if line == "data: [DONE]\n" {
			break
		}
	}
	if srv.ActiveStreams() != 1 {
		t.Fatalf("%d active streams after [DONE], want 1 (the end held back)", srv.ActiveStreams())
	}
	resp.Body.Close()
	srv.Close()
	if srv.Aborts() != 0 {
		t.Fatalf("%d aborts", srv.Aborts())
	}
}

// TestContextRefusalWordings: a prompt over the configured context is
// refused with HTTP 400 and code context_length_exceeded, in the wording
// asked for; a prompt within it is answered. vLLM's wording counts the
// answer's max_tokens into the window, as vLLM does.
func TestContextRefusalWordings(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	tests := []struct {
		name, marker string
		status       int
		message      string
	}{
		{"openai", "[[fake context=4]]", 400, "This model's maximum context length is 4 tokens. However, your messages " +
			"resulted in 7 tokens. Please reduce the length of the messages."},
		{"vllm", "[[fake context=4 context_words=vllm]]", 400, "This model's maximum context length is 4 tokens. " +
			"However, you requested 17 tokens (7 in the messages, 10 in the completion). Please reduce the length of the messages or completion."},
		{"bare", "[[fake context=4 context_words=bare]]", 400, "Please reduce the length of the messages."},
		{"within", "[[fake context=7 context_words=bare]]", 200, ""},
		{"vllm counts the answer", "[[fake context=16 context_words=vllm]]", 400, "This model's maximum context length is 16 tokens. " +
			"However, you requested 17 tokens (7 in the messages, 10 in the completion). Please reduce the length of the messages or completion."},
		{"vllm, the answer within", "[[fake context=17 context_words=vllm]]", 200, ""},
		{"openai counts the prompt only", "[[fake context=7]]", 200, ""},
		{"unknown wording", "[[fake context=4 context_words=poem]]", 400, `fakeai: setting context_words="poem": unknown wording`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := streamBody("five words of prompt here "+tt.marker, false) // and "be brief": 7
			body["max_tokens"] = 10
			resp := post(t, testCtx(t), srv.URL, body, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 200 {
				return
			}
			var e struct {
				Error struct{ Message, Code string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			wantCode := "context_length_exceeded"
			if tt.name == "unknown wording" {
				wantCode = ""
			}
			if e.Error.Message != tt.message || e.Error.Code != wantCode {
				t.Fatalf("error %+v, want %q (%s)", e.Error, tt.message, wantCode)
			}
		})
	}
}

// TestModelFields: ModelFields adds raw members to one model's entry,
// replacing ContextLength's, and leaves the other entries alone.
func TestModelFields(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Models: []string{"a", "b"}, ContextLength: 4096,
		ModelFields: map[string]map[string]json.RawMessage{"a": {"context_length": json.RawMessage(`8192.0`), "max_model_len": json.RawMessage(`"x"`)}}})
	req, _ := http.NewRequestWithContext(testCtx(t), http.MethodGet, srv.URL+"/models", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var list struct{ Data []map[string]json.RawMessage }
	if err := json.Unmarshal(raw, &list); err != nil || len(list.Data) != 2 {
		t.Fatalf("list %+v err %v", list, err)
	}
	a, b := list.Data[0], list.Data[1]
	if string(a["context_length"]) != "8192.0" || string(a["max_model_len"]) != `"x"` || string(b["context_length"]) != "4096" || b["max_model_len"] != nil {
		t.Fatalf("entries %s / %s", a, b)
	}
}
