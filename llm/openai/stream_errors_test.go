package openai_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

// sseServer serves body as a 200 event stream to every request and counts
// the requests.
func sseServer(t *testing.T, body string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// contentChunk is an OpenAI chunk event carrying text.
func contentChunk(text string) string {
	return fmt.Sprintf(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":%q},"finish_reason":null}]}`+"\n\n", text)
}

// TestInStreamErrorKinds: an OpenAI-style error event inside a 200 stream
// (`data: {"error":{...}}`) is classified by its code and wording, like the
// same error with an HTTP status: a prompt refused as too long is
// context_length (docs/protocol.md), not upstream_error.
func TestInStreamErrorKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		body           string // the error event's JSON
		kind           llm.ErrorKind
		window, prompt int // the numbers a context-length refusal names
	}{
		{"context length by code",
			`{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			llm.KindContextLength, 8192, 9000},
		{"context length by wording",
			`{"error":{"message":"prompt exceeds the context window of this model","type":"BadRequestError"}}`,
			llm.KindContextLength, 0, 0},
		{"server error", `{"error":{"message":"The server had an error.","type":"server_error"}}`, llm.KindUpstream, 0, 0},
		// An account out of quota or credit, reported inside the stream.
		{"insufficient quota", `{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","code":"insufficient_quota"}}`,
			llm.KindQuota, 0, 0},
		{"billing error", `{"type":"error","error":{"type":"billing_error","message":"Your credit balance is too low."}}`,
			llm.KindQuota, 0, 0},
		// llama.cpp sends its error as an "error" field, then [DONE].
		{"llama.cpp context size", "error: " + `{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":5000,"n_ctx":4096}`,
			llm.KindContextLength, 0, 0},
		{"llama.cpp server error", "error: " + `{"code":500,"message":"boom","type":"server_error"}`, llm.KindUpstream, 0, 0},
		// TGI's error is a string: go-openai could not read it (malformed).
		{"tgi string error", "data:" + `{"error":"Input validation error: ` + "`inputs`" + ` must have less than 4096 tokens. Given: 5000","error_type":"validation"}`,
			llm.KindContextLength, 4096, 5000},
		// An error object at the top level decoded as a chunk without
		// choices: unnoticed, and the [DONE] after it ended the answer.
		{"top-level error object", "data: " + `{"object":"error","message":"engine overloaded","type":"ServiceUnavailableError","code":503}`,
			llm.KindUpstream, 0, 0},
		// Event and id fields before the error left go-openai unable to
		// read it: a malformed reply, the upstream's message lost.
		{"after event and id fields", "event: message\nid: 7\ndata: " + `{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","code":"context_length_exceeded"}}`,
			llm.KindContextLength, 8192, 9000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := "data: " + tc.body + "\n\n"
			switch {
			case strings.HasPrefix(tc.body, "error: "):
				body = contentChunk("partial ") + tc.body + "\n\ndata: [DONE]\n\n"
			case strings.HasPrefix(tc.body, "data:"):
				body = contentChunk("partial ") + tc.body + "\n\ndata: [DONE]\n\n"
			case strings.HasPrefix(tc.body, "event: "):
				body = "event: message\n" + contentChunk("partial ") + tc.body + "\n\n"
			}
			srv, _ := sseServer(t, body)
			r := stream(testCtx(t), newClient(srv.URL, nil), "hi", 0)
			if llm.KindOf(r.err) != tc.kind {
				t.Fatalf("kind %q (err %v), want %q", llm.KindOf(r.err), r.err, tc.kind)
			}
			if e := (*llm.Error)(nil); errors.As(r.err, &e) && (e.ContextTokens != tc.window || e.PromptTokens != tc.prompt) {
				t.Fatalf("window %d, prompt %d tokens; want %d, %d", e.ContextTokens, e.PromptTokens, tc.window, tc.prompt)
			}
		})
	}
}

// TestErrorChunk: OpenRouter reports a failure after the stream started as
// an ordinary chunk with a top-level "error" (code, message) and
// finish_reason "error", then [DONE]. The answer fails with the kind its
// code and message say, the provider's message shown, and the text so far
// delivered; nothing is retried (a 5xx or 429 before any text is:
// TestInStreamErrorRetried). (fakeai's error_chunk fault is this shape
// with code 502; TestMidStreamFailures streams it end to end.)
func TestErrorChunk(t *testing.T) {
	t.Parallel()
	errorChunk := func(errMember string) string {
		return `data: {"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"anthropic/claude","provider":"Anthropic",` +
			errMember + `"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error","native_finish_reason":"error"}]}` + "\n\n"
	}
	tests := []struct {
		name    string
		text    string // sent before the error chunk
		err     string // the chunk's "error" member and a comma, or ""
		kind    llm.ErrorKind
		message string // in the error's Message
	}{
		{"provider disconnected", "The answer is", `"error":{"code":502,"message":"Provider disconnected unexpectedly"},`,
			llm.KindUpstream, "Provider disconnected unexpectedly"},
		{"rate limited", "The answer is", `"error":{"code":429,"message":"Provider returned 429"},`,
			llm.KindRateLimited, "Provider returned 429"},
		{"context length", "", `"error":{"code":400,"message":"This endpoint's maximum context length is 4096 tokens."},`,
			llm.KindContextLength, "maximum context length"},
		{"insufficient credits", "", `"error":{"code":402,"message":"Insufficient credits"},`,
			llm.KindQuota, "out of credit / quota exhausted (check the account's plan and billing): Insufficient credits"},
		{"timeout", "Partial", `"error":{"code":408,"message":"Provider timed out"},`,
			llm.KindTimeout, "Provider timed out"},
		{"string code", "", `"error":{"code":"server_error","message":"Overloaded"},`,
			llm.KindUpstream, "Overloaded"},
		{"finish reason error alone", "The answer is", "", llm.KindUpstream, "finish reason"},
		// A bidirectional override and control characters are not shown.
		{"override in the message", "The answer is", `"error":{"code":500,"message":"boom \u202e evil\u0007\u001b[0m"},`,
			llm.KindUpstream, "reported an error: boom evil[0m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := errorChunk(tc.err) + "data: [DONE]\n\n"
			if tc.text != "" {
				body = contentChunk(tc.text) + body
			}
			srv, requests := sseServer(t, body)
			r := stream(testCtx(t), newClient(srv.URL, nil), "hi", 0)
			var e *llm.Error
			if !errors.As(r.err, &e) || e.Kind != tc.kind || !strings.Contains(e.Message, tc.message) {
				t.Fatalf("err %v, want kind %s with %q", r.err, tc.kind, tc.message)
			}
			if r.text() != tc.text || r.res.FinishReason != "error" {
				t.Fatalf("text %q finish %q, want %q and error", r.text(), r.res.FinishReason, tc.text)
			}
			if n := requests.Load(); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
		})
	}
}

// TestErrorBodyWithStatus200: an upstream answering 200 with an error JSON
// body without a final newline (fakeai's error_body) fails at once with
// the upstream's message, not as a lost connection retried until
// MaxRetries. (go-openai drops a last line read together with the end of
// the body; the SSE fixer ends it.)
func TestErrorBodyWithStatus200(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	r := stream(testCtx(t), newClient(srv.URL, nil), "[[fake fault=error_body]]", 0)
	var e *llm.Error
	if !errors.As(r.err, &e) || e.Kind != llm.KindRateLimited || !strings.Contains(e.Message, "Rate limit reached for requests") {
		t.Fatalf("err %v, want rate_limited with the upstream's message", r.err)
	}
	if n := srv.Requests(); n != 1 {
		t.Fatalf("%d requests, want 1: an error reported in a 200 answer is not retried", n)
	}
}

// TestUnterminatedLastLine: a body whose last line lacks its newline is
// read whole; a last data line cut short is still a lost connection.
func TestUnterminatedLastLine(t *testing.T) {
	t.Parallel()
	const finish = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	tests := []struct {
		name   string
		body   string
		finish string
		kind   llm.ErrorKind // "": success
	}{
		{"[DONE]", contentChunk("hi") + "data: [DONE]", "", ""},
		{"finish chunk", contentChunk("hi") + finish, "stop", ""},
		{"finish chunk, then [DONE]", contentChunk("hi") + finish + "\n\ndata: [DONE]", "stop", ""},
		{"cut chunk", contentChunk("hi") + finish[:40], "", llm.KindConnection},
		{"error body", `{"error":{"message":"Overloaded","type":"server_error"}}`, "", llm.KindUpstream},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := sseServer(t, tc.body)
			r := stream(testCtx(t), newClient(srv.URL, func(o *openai.Options) { o.MaxRetries = -1 }), "hi", 0)
			if llm.KindOf(r.err) != tc.kind || (tc.kind == "" && r.err != nil) {
				t.Fatalf("err %v, want kind %q", r.err, tc.kind)
			}
			if tc.kind == "" && (r.text() != "hi" || r.res.FinishReason != tc.finish) {
				t.Fatalf("text %q finish %q", r.text(), r.res.FinishReason)
			}
		})
	}
}

// TestContextLengthRefusals: a prompt refused as too long is context_length
// (a clear error for the user, docs/protocol.md) in every upstream's
// wording, also llama.cpp's and a proxy's 413 (a body too large is the
// conversation), while other refusals stay bad_request. The context window
// and the prompt's tokens the refusal names are read (the hub fits the
// prompt into them and asks again); 0 for what it does not name.
func TestContextLengthRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		status         int
		body           string
		kind           llm.ErrorKind
		window, prompt int
	}{
		{"openai", 400, `{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}`,
			llm.KindContextLength, 8192, 9000},
		{"openai older, vllm", 400, `{"error":{"message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.","type":"invalid_request_error","code":"context_length_exceeded"}}`,
			llm.KindContextLength, 4096, 4000},
		{"vllm input tokens", 400, `{"error":{"message":"This model's maximum context length is 2048 tokens. However, your request has 3000 input tokens. Please reduce the length of the input messages.","type":"BadRequestError","param":null,"code":400}}`,
			llm.KindContextLength, 2048, 3000},
		{"vllm max_tokens too large", 400, `{"error":{"message":"'max_tokens' or 'max_completion_tokens' is too large: 1000. This model's maximum context length is 2048 tokens and your request has 1500 input tokens (1000 > 2048 - 1500).","type":"BadRequestError","code":400}}`,
			llm.KindContextLength, 2048, 1500},
		{"only the total requested", 400, `{"error":{"message":"This request exceeds the maximum context length: you requested 5000 tokens.","code":"context_length_exceeded"}}`,
			llm.KindContextLength, 0, 5000},
		{"no numbers", 400, `{"error":{"message":"Please reduce the length of the messages.","type":"invalid_request_error","code":"context_length_exceeded"}}`,
			llm.KindContextLength, 0, 0},
		{"llama.cpp", 400, `{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error"}}`,
			llm.KindContextLength, 0, 0},
		{"llama.cpp with numbers", 400, `{"error":{"code":400,"message":"request (5584 tokens) exceeds the available context size (4096 tokens), try increasing it","type":"exceed_context_size_error"}}`,
			llm.KindContextLength, 4096, 5584},
		{"llama.cpp by type", 400, `{"error":{"code":400,"message":"request (9000 tokens) is too big","type":"exceed_context_size_error"}}`,
			llm.KindContextLength, 0, 0},
		{"anthropic compatible", 400, `{"error":{"message":"prompt is too long: 215000 tokens > 200000 maximum","type":"invalid_request_error"}}`,
			llm.KindContextLength, 200000, 215000},
		{"mistral", 400, `{"error":{"message":"Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length","type":"invalid_request_error"}}`,
			llm.KindContextLength, 32768, 40000},
		{"absurd numbers ignored", 400, `{"error":{"message":"This model's maximum context length is 99999999999 tokens. However, your messages resulted in 0 tokens.","code":"context_length_exceeded"}}`,
			llm.KindContextLength, 0, 0},
		{"proxy 413 json", 413, `{"error":{"message":"Request Entity Too Large","type":"invalid_request_error"}}`, llm.KindContextLength, 0, 0},
		{"proxy 413 html", 413, `<html><head><title>413 Request Entity Too Large</title></head><body>nginx</body></html>`, llm.KindContextLength, 0, 0},
		{"other bad request", 400, `{"error":{"message":"Invalid value for 'temperature'.","type":"invalid_request_error"}}`, llm.KindBadRequest, 0, 0},
		{"vllm top-level error", 400, `{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion).","type":"BadRequestError","param":null,"code":400}`,
			llm.KindContextLength, 4096, 4000},
		{"tgi string error", 422, "{\"error\":\"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 200 `max_new_tokens`\",\"error_type\":\"validation\"}",
			llm.KindContextLength, 4096, 4000},
		{"fastapi detail", 400, `{"detail":"This model's maximum context length is 2048 tokens. However, your request has 3000 input tokens."}`,
			llm.KindContextLength, 2048, 3000},
		{"vllm output and input tokens", 400, `{"error":{"message":"This model's maximum context length is 8192 tokens. However, you requested 1024 output tokens and your prompt contains at least 7169 input tokens, for a total of at least 8193 tokens. Please reduce the length of the input prompt or the number of requested output tokens. (parameter=input_tokens, value=7169)","type":"BadRequestError","param":"input_tokens","code":400}}`,
			llm.KindContextLength, 8192, 7169},
		{"vllm maximum input length", 400, `{"error":{"message":"You passed 12289 input tokens and requested 4096 output tokens. However, the model's context length is only 16384 tokens, resulting in a maximum input length of 12288 tokens. Please reduce the length of the input prompt. (parameter=input_tokens, value=12289)","type":"BadRequestError","param":"input_tokens","code":400}}`,
			llm.KindContextLength, 16384, 12289},
		{"vllm max_tokens beyond the model length", 400, `{"error":{"message":"max_tokens=8192 cannot be greater than max_model_len=max_total_tokens=4096. Please request fewer output tokens.","type":"BadRequestError","param":null,"code":400}}`,
			llm.KindContextLength, 4096, 0},
		{"vllm decoder prompt", 400, `{"object":"error","message":"The decoder prompt (length 9000) is longer than the maximum model length of 8192. Make sure that ` + "`max_model_len`" + ` is no smaller than the number of text tokens.","type":"BadRequestError","param":null,"code":400}`,
			llm.KindContextLength, 8192, 9000},
		{"tgi input length", 422, "{\"error\":\"Input validation error: `inputs` must have less than 4096 tokens. Given: 5000\",\"error_type\":\"validation\"}",
			llm.KindContextLength, 4096, 5000},
		{"ollama", 400, `{"error":{"message":"the input length exceeds the context length","type":"invalid_request_error","param":null,"code":null}}`,
			llm.KindContextLength, 0, 0},
		{"ollama native", 400, `{"error":"the input length exceeds the context length"}`, llm.KindContextLength, 0, 0},
		{"openai legacy completions", 400, `{"error":{"message":"This model's maximum context length is 4097 tokens, however you requested 4231 tokens (3975 in your prompt; 256 for the completion). Please reduce your prompt; or completion length.","type":"invalid_request_error","code":null}}`,
			llm.KindContextLength, 4097, 3975},
		{"openrouter", 400, `{"error":{"message":"This endpoint's maximum context length is 65536 tokens. However, you requested about 70000 tokens (3000 of text input, 67000 in the output). Please reduce the length of either one.","code":400,"metadata":{"provider_name":"X"}}}`,
			llm.KindContextLength, 65536, 3000},
		{"openrouter text input only", 400, `{"error":{"message":"This endpoint's maximum context length is 16384 tokens. However, you requested about 20000 tokens (20000 of text input). Please reduce the length of either one.","code":400}}`,
			llm.KindContextLength, 16384, 20000},
		{"only the total requested, about", 400, `{"error":{"message":"This endpoint's maximum context length is 16384 tokens. However, you requested about 20000 tokens.","code":400}}`,
			llm.KindContextLength, 16384, 20000},
		{"gemini", 400, `[{"error":{"code":400,"message":"The input token count (140000) exceeds the maximum number of tokens allowed (131072).","status":"INVALID_ARGUMENT"}}]`,
			llm.KindContextLength, 131072, 140000},
		{"gemini, not in a list", 400, `{"error":{"code":400,"message":"The input token count (140000) exceeds the maximum number of tokens allowed (131072).","status":"INVALID_ARGUMENT"}}`,
			llm.KindContextLength, 131072, 140000},
		{"gemini other refusal", 400, `[{"error":{"code":400,"message":"Request contains an invalid argument.","status":"INVALID_ARGUMENT"}}]`,
			llm.KindBadRequest, 0, 0},
		{"top-level other refusal", 400, `{"object":"error","message":"temperature must be at most 2","type":"BadRequestError","code":400}`, llm.KindBadRequest, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			r := stream(testCtx(t), newClient(srv.URL, nil), "hi", 0)
			if llm.KindOf(r.err) != tc.kind {
				t.Fatalf("kind %q (err %v), want %q", llm.KindOf(r.err), r.err, tc.kind)
			}
			var e *llm.Error
			if !errors.As(r.err, &e) {
				t.Fatalf("err %v is no *llm.Error", r.err)
			}
			if tc.kind == llm.KindContextLength && !strings.HasPrefix(e.Message, "The conversation is too long for this model") {
				t.Fatalf("message %q", e.Message)
			}
			if e.ContextTokens != tc.window || e.PromptTokens != tc.prompt {
				t.Fatalf("window %d, prompt %d tokens; want %d, %d", e.ContextTokens, e.PromptTokens, tc.window, tc.prompt)
			}
		})
	}
}

// TestErrorLineThenSilence: an error event whose line is not followed by
// another (the upstream keeps the connection open after it) is reported
// at once: go-openai reads one more line before it reports an error, so
// the stream waited for the idle timeout and failed as a timeout, the
// upstream's message lost.
func TestErrorLineThenSilence(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, contentChunk("partial ")+`data: {"error":{"message":"overloaded","type":"server_error"}}`+"\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	c := newClient(srv.URL, func(o *openai.Options) { o.IdleTimeout, o.FirstTokenTimeout = 2*time.Second, 2*time.Second })
	r := stream(testCtx(t), c, "hi", 0)
	var e *llm.Error
	if !errors.As(r.err, &e) || e.Kind != llm.KindUpstream || !strings.Contains(e.Message, "overloaded") || r.text() != "partial " {
		t.Fatalf("text %q err %v, want upstream_error saying overloaded", r.text(), r.err)
	}
}

// TestEndlessLine: an upstream sending bytes without ever ending the line
// fails the stream once the line passes the bound (16 MiB), as a reply
// that cannot be read; before, the line grew in memory until the first
// token timeout. The timeouts (30s) are far past the time to read the
// bound under load (about 2s with -race; 5s timeouts were reached once),
// and the event's data lines are 64 KiB each: in lines of 13 bytes the
// joining took 4s of the 5.
func TestEndlessLine(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, head, piece string }{
		{"one line", `data: {"choices":[{"index":0,"delta":{"content":"`, strings.Repeat("x", 64<<10)},
		// The data lines of one event are joined (see sseFixer.join).
		{"the data lines of one event", `data: {"choices":[{"index":0,` + "\n", "data: \"x\":\"" + strings.Repeat("x", 64<<10) + "\",\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = w.Write([]byte(tc.head))
				for r.Context().Err() == nil {
					if _, err := w.Write([]byte(tc.piece)); err != nil {
						return
					}
				}
			}))
			t.Cleanup(srv.Close)
			c := newClient(srv.URL, func(o *openai.Options) { o.IdleTimeout, o.FirstTokenTimeout = 30*time.Second, 30*time.Second })
			r := stream(testCtx(t), c, "hi", 0)
			if llm.KindOf(r.err) != llm.KindMalformed || r.text() != "" {
				t.Fatalf("text %d bytes, err %v; want malformed", len(r.text()), r.err)
			}
		})
	}
}

// TestLongLine: a long chunk under the bound (a few MiB: an image as a
// data URL) is read whole.
func TestLongLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("y", 4<<20)
	srv, _ := sseServer(t, contentChunk(long)+"data: [DONE]\n\n")
	if r := stream(testCtx(t), newClient(srv.URL, nil), "hi", 0); r.err != nil || r.text() != long {
		t.Fatalf("text %d bytes, err %v", len(r.text()), r.err)
	}
}

// TestEndlessErrorBody: an error status whose body never ends is
// classified by its status once the bound (1 MiB) is read; before,
// go-openai read it until the first token timeout.
func TestEndlessErrorBody(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		piece := []byte(strings.Repeat("<p>bad gateway</p>\n", 1000))
		for r.Context().Err() == nil {
			if _, err := w.Write(piece); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	c := newClient(srv.URL, func(o *openai.Options) {
		o.MaxRetries, o.IdleTimeout, o.FirstTokenTimeout = -1, 5*time.Second, 5*time.Second
	})
	r := stream(testCtx(t), c, "hi", 0)
	var e *llm.Error
	if !errors.As(r.err, &e) || e.Kind != llm.KindUpstream || e.Status != http.StatusBadGateway {
		t.Fatalf("err %v, want upstream_error with status 502", r.err)
	}
}

// TestErrorInAList: an error response whose body is a list holding
// OpenAI's error object (Google's APIs answer so) is read like the object
// alone: its message is shown. Before, go-openai could not read it and
// the refusal said nothing of why.
func TestErrorInAList(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `[{"error":{"code":400,"message":"Unknown name \"x\": Cannot find field.","status":"INVALID_ARGUMENT"}}]`)
	}))
	t.Cleanup(srv.Close)
	r := stream(testCtx(t), newClient(srv.URL, nil), "hi", 0)
	var e *llm.Error
	if !errors.As(r.err, &e) || e.Kind != llm.KindBadRequest || !strings.Contains(e.Message, `Unknown name "x": Cannot find field.`) {
		t.Fatalf("err %v, want bad_request with the upstream's message", r.err)
	}
}

// TestValidationDetails: a refusal whose reason is a list of validation
// details (FastAPI servers' {"detail":[{"loc":...,"msg":...}]}, Mistral's
// {"object":"error","message":{"detail":[...]}}) tells the user what was
// refused, where it said only that the request was rejected.
func TestValidationDetails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want string
	}{
		{"fastapi", `{"detail":[{"type":"less_than_equal","loc":["body","temperature"],"msg":"Input should be less than or equal to 1.5","input":1.9}]}`,
			"temperature: Input should be less than or equal to 1.5"},
		{"mistral", `{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","messages",0,"user","name"],"msg":"Extra inputs are not permitted","input":null},{"type":"missing","loc":["body","model"],"msg":"Field required"}]},"type":"invalid_request_error","param":null,"code":null}`,
			"messages.0.user.name: Extra inputs are not permitted; model: Field required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnprocessableEntity)
				fmt.Fprint(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			r := stream(testCtx(t), newClient(srv.URL, nil), "hi", 0)
			var e *llm.Error
			if !errors.As(r.err, &e) || e.Kind != llm.KindBadRequest || !strings.HasSuffix(e.Message, ": "+tc.want) {
				t.Fatalf("err %v, want bad_request ending %q", r.err, tc.want)
			}
		})
	}
}

// TestInStreamErrorRetried: a failure a 200 stream reports before any
// text, with a numeric code of a 5xx or 429 (a number or a numeric
// string: OpenRouter's provider failures), or as a finish reason saying
// the answer was broken off, is retried as the same failure with that
// HTTP status is; the retry's answer is the one given. Before, only the
// HTTP status was retried, and the in-stream failure ended the answer at
// once. A refusal (a 4xx code) is not retried.
func TestInStreamErrorRetried(t *testing.T) {
	t.Parallel()
	errorChunk := func(errMember, finish string) string {
		return `data: {"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"m",` + errMember +
			`"choices":[{"index":0,"delta":{"content":""},"finish_reason":"` + finish + `"}]}` + "\n\ndata: [DONE]\n\n"
	}
	tests := []struct {
		name     string
		body     string // the first answer
		requests int32
		kind     llm.ErrorKind // of a failure not retried
	}{
		{"code 502", errorChunk(`"error":{"code":502,"message":"Provider disconnected unexpectedly"},`, "error"), 2, ""},
		{"code \"503\"", errorChunk(`"error":{"code":"503","message":"Provider overloaded"},`, "error"), 2, ""},
		{"code 429", errorChunk(`"error":{"code":429,"message":"Provider returned 429"},`, "error"), 2, ""},
		{"an error event, code 500", `data: {"error":{"message":"boom","type":"server_error","code":500}}` + "\n\n", 2, ""},
		{"llama.cpp's error line", `error: {"code":500,"message":"Failed to decode the batch","type":"server_error"}` + "\n\ndata: [DONE]\n\n", 2, ""},
		{"finish reason error alone", errorChunk("", "error"), 2, ""},
		{"finish reason abort", errorChunk("", "abort"), 2, ""},
		{"code 502 after leading white space", contentChunk("\n\n") + errorChunk(`"error":{"code":502,"message":"Provider disconnected"},`, "error"), 2, ""},
		{"the body's end after leading white space", contentChunk("\n\n"), 2, ""},
		{"code 400", errorChunk(`"error":{"code":400,"message":"Bad input"},`, "error"), 1, llm.KindBadRequest},
		{"code 402", errorChunk(`"error":{"code":402,"message":"Insufficient credits"},`, "error"), 1, llm.KindQuota},
		{"a string code", errorChunk(`"error":{"code":"server_error","message":"Overloaded"},`, "error"), 1, llm.KindUpstream},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				if n.Add(1) == 1 {
					fmt.Fprint(w, tc.body)
					return
				}
				fmt.Fprint(w, contentChunk("retried")+"data: [DONE]\n\n")
			}))
			t.Cleanup(srv.Close)
			r := stream(testCtx(t), newClient(srv.URL, nil), "hi", 0)
			if got := n.Load(); got != tc.requests {
				t.Fatalf("%d requests, want %d (err %v)", got, tc.requests, r.err)
			}
			if tc.kind == "" && (r.err != nil || r.text() != "retried") {
				t.Fatalf("text %q err %v, want the retry's answer", r.text(), r.err)
			}
			if tc.kind != "" && (llm.KindOf(r.err) != tc.kind || r.text() != "") {
				t.Fatalf("text %q err %v, want %s", r.text(), r.err, tc.kind)
			}
		})
	}
}
