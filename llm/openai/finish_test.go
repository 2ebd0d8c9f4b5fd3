package openai_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

// TestProviderFinishReasons: finish reasons of providers' own are read
// as what they mean, so that the user is told (docs/protocol.md): Mistral's
// "model_length" is an answer cut at the model's limit ("length", which
// clients note under the answer), DeepSeek's "insufficient_system_resource"
// an answer the provider broke off (an upstream error with the text so far
// kept, not a complete answer), and so is vLLM's "abort" (its engine
// aborted the request); others pass through as the upstream said.
func TestProviderFinishReasons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		finish string
		want   string        // the Result's finish reason, when no error
		kind   llm.ErrorKind // "": success
		says   string        // what the error's message names
	}{
		{"model_length", "length", "", ""},
		{"insufficient_system_resource", "", llm.KindUpstream, "resources"},
		{"abort", "", llm.KindUpstream, "aborted"},
		{"content_filter", "content_filter", "", ""},
		{"tool_calls", "tool_calls", "", ""},
		{"stop", "stop", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.finish, func(t *testing.T) {
			t.Parallel()
			cfg := fakeai.Config{Tokens: 4}
			srv := fakeai.Start(t, fakeai.Options{Defaults: cfg})
			r := stream(testCtx(t), newClient(srv.URL, nil), "[[fake finish="+tc.finish+"]]", 0)
			if r.text() != fakeai.ExpectedText(cfg) {
				t.Fatalf("text %q, want the whole text streamed", r.text())
			}
			if tc.kind == "" {
				if r.err != nil || r.res.FinishReason != tc.want {
					t.Fatalf("err %v finish %q, want finish %q", r.err, r.res.FinishReason, tc.want)
				}
				return
			}
			var e *llm.Error
			if !errors.As(r.err, &e) || e.Kind != tc.kind || !strings.Contains(e.Message, tc.says) {
				t.Fatalf("err %v (finish %q), want %s saying %q", r.err, r.res.FinishReason, tc.kind, tc.says)
			}
			if n := srv.Requests(); n != 1 {
				t.Fatalf("%d requests: text was delivered, nothing may be asked again", n)
			}
		})
	}
}

// TestNothingAfterTheFinishReason: an upstream that sends the finish
// reason, then neither the usage nor [DONE], keeping the stream open with
// comments (fakeai's hang_end), ends the answer complete FinishWait after
// it, where the answer was held until the idle timeout (30 s by default:
// a finished answer still streaming, the next message refused meanwhile).
// Text that comes after an early finish reason ends the wait (see
// TestEarlyFinishReason).
func TestNothingAfterTheFinishReason(t *testing.T) {
	t.Parallel()
	t.Run("hang after the finish reason", func(t *testing.T) {
		t.Parallel()
		cfg := fakeai.Config{Tokens: 3}
		srv := fakeai.Start(t, fakeai.Options{Defaults: cfg})
		c := newClient(srv.URL, func(o *openai.Options) { o.IdleTimeout, o.FinishWait = 40*time.Second, 50*time.Millisecond })
		start := time.Now()
		r := stream(testCtx(t), c, "[[fake fault=hang_end]]", 0)
		if r.err != nil || r.text() != fakeai.ExpectedText(cfg) || r.res.FinishReason != "stop" {
			t.Fatalf("err %v finish %q text %q", r.err, r.res.FinishReason, r.text())
		}
		if d := time.Since(start); d >= 20*time.Second { // held, it would end at the idle timeout (40 s)
			t.Fatalf("the answer ended %v after it started: held after its finish reason", d)
		}
		if err := srv.WaitAbort(testCtx(t)); err != nil { // the request was ended, not left open
			t.Fatal(err)
		}
	})
	t.Run("text after an early finish reason", func(t *testing.T) {
		t.Parallel()
		// The first piece ends the wait; the pieces take longer in all
		// than FinishWait, with a wide margin per gap (a loaded CI machine
		// once held one gap past a 1 s wait with pieces 100 ms apart).
		const pieces, pace, wait = 10, 400 * time.Millisecond, 3 * time.Second
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, `data: {"choices":[{"index":0,"delta":{"reasoning_content":"hm"},"finish_reason":"stop"}]}`+"\n\n")
			for range pieces {
				w.(http.Flusher).Flush()
				time.Sleep(pace) // the upstream's pace, longer in all than FinishWait
				fmt.Fprint(w, contentChunk("a"))
			}
			fmt.Fprint(w, "data: [DONE]\n\n")
		}))
		t.Cleanup(srv.Close)
		c := newClient(srv.URL, func(o *openai.Options) { o.FinishWait = wait })
		r := stream(testCtx(t), c, "hi", 0)
		if r.err != nil || r.text() != strings.Repeat("a", pieces) {
			t.Fatalf("err %v text %q, want every piece", r.err, r.text())
		}
	})
}

// TestEmptyStream: a stream that ends ([DONE], or the body's end) having
// carried no text and no reasoning is an upstream error saying why, where
// the answer was stored complete and empty, with nothing telling the user
// why: without a finish reason, no answer at all; with tool_calls (or
// function_call), the model asked for a tool, which chatd never offers;
// with another reason ("stop" over text in a field chatd does not read),
// an answer without text. None is retried. An empty answer whose finish
// reason explains it (a length cut, a content filter) stays complete.
func TestEmptyStream(t *testing.T) {
	t.Parallel()
	const done = "data: [DONE]\n\n"
	finish := func(delta, reason string) string {
		return `data: {"choices":[{"index":0,"delta":` + delta + `,"finish_reason":"` + reason + `"}]}` + "\n\n"
	}
	toolCall := `{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}`
	tests := []struct {
		name, body string
		finish     string // the Result's finish reason
		says       string // what the error's message holds; "": complete
	}{
		{"[DONE] only", done, "", "without an answer"},
		{"role chunk, usage, [DONE]", `data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n" +
			`data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":0,"total_tokens":3}}` + "\n\n" + done, "", "without an answer"},
		{"content filter", finish("{}", "content_filter") + done, "content_filter", ""},
		{"length", finish("{}", "length") + done, "length", ""},
		{"a tool call", finish(toolCall, "") + finish("{}", "tool_calls") + done, "tool_calls", "asked to call a tool"},
		{"a tool call, the body's end", finish(toolCall, "tool_calls"), "tool_calls", "asked to call a tool"},
		{"a function call", finish(`{"function_call":{"name":"f","arguments":"{}"}}`, "function_call") + done, "function_call", "asked to call a tool"},
		{"stop over text chatd does not read", finish(`{"text":"hello"}`, "stop") + done, "stop", `without any text (finish reason "stop")`},
		{"stop after an empty think block", `data: {"choices":[{"index":0,"delta":{"content":"<think></think>"}}]}` + "\n\n" + finish("{}", "stop") + done,
			"stop", "without any text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, requests := sseServer(t, tc.body)
			r := stream(testCtx(t), newClient(srv.URL, nil), "hi", 0)
			if r.res.FinishReason != tc.finish || r.text() != "" {
				t.Fatalf("finish %q text %q, want %q and no text", r.res.FinishReason, r.text(), tc.finish)
			}
			if tc.says == "" {
				if r.err != nil {
					t.Fatalf("err %v, want complete", r.err)
				}
				return
			}
			var e *llm.Error
			if !errors.As(r.err, &e) || e.Kind != llm.KindUpstream || !strings.Contains(e.Message, tc.says) {
				t.Fatalf("err %v, want upstream_error saying %q", r.err, tc.says)
			}
			if n := requests.Load(); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
		})
	}
}

// TestToolCallWithoutText: a model asking to call a tool (fakeai's
// tool_call) with no text fails with a message saying so, asked once;
// with text before the call, the answer is that text, complete.
func TestToolCallWithoutText(t *testing.T) {
	t.Parallel()
	cfg := fakeai.Config{Tokens: 6}
	tests := []struct {
		after int
		want  string // the text
		fails bool
	}{
		{0, "", true},
		{2, fakeai.ExpectedPrefix(cfg, 2), false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("after ", tc.after), func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{})
			r := stream(testCtx(t), newClient(srv.URL, nil), fmt.Sprintf("[[fake tokens=6 fault=tool_call after=%d]]", tc.after), 0)
			var e *llm.Error
			if r.text() != tc.want || r.res.FinishReason != "tool_calls" || (r.err != nil) != tc.fails ||
				tc.fails && (!errors.As(r.err, &e) || e.Kind != llm.KindUpstream || !strings.Contains(e.Message, "asked to call a tool")) {
				t.Fatalf("text %q finish %q err %v", r.text(), r.res.FinishReason, r.err)
			}
			if n := srv.Requests(); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
		})
	}
}

// TestEarlyFinishReason: a finish reason followed by text was early (a
// role chunk carrying "stop", a proxy putting the reason on every chunk):
// the answer goes on as if it had not come, so a pause longer than
// FinishWait is waited out (bounded by the idle timeout), and a stream
// that ends without [DONE] or stalls after that text fails as it would
// before any finish reason. Before, the wait after the early reason ended
// the attempt at the pause, and the cut answer was stored complete; the
// end of the body was taken for the answer's end.
func TestEarlyFinishReason(t *testing.T) {
	t.Parallel()
	// pause stands for a gap in the upstream's text, far past FinishWait
	// (100 ms) and far below the idle timeout (20 s, or 2 s for "hang").
	const pause, hang = "pause", "hang"
	role := `data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}` + "\n\n"
	every := func(text string) string { // a chunk of a proxy that marks every chunk finished
		return fmt.Sprintf(`data: {"choices":[{"index":0,"delta":{"content":%q},"finish_reason":"stop"}]}`+"\n\n", text)
	}
	done := "data: [DONE]\n\n"
	finishOnly := `data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n" // the real end
	tests := []struct {
		name   string
		steps  []string
		text   string
		finish string        // the Result's, when no error
		kind   llm.ErrorKind // "": success
	}{
		{"role chunk's reason, then a pause", []string{role, contentChunk("first "), pause, contentChunk("second"), done}, "first second", "", ""},
		{"role chunk's reason, then the body's end", []string{role, contentChunk("first ")}, "first ", "", llm.KindConnection},
		{"role chunk's reason, then silence", []string{role, contentChunk("first "), hang}, "first ", "", llm.KindTimeout},
		{"every chunk's reason, then a pause", []string{every("a"), every("b"), pause, every("c"), done}, "abc", "stop", ""},
		{"every chunk's reason, then silence", []string{every("a"), every("b"), hang}, "ab", "", llm.KindTimeout},
		{"role chunk's reason, then a slow first token", []string{role, pause, contentChunk("hello"), done}, "hello", "", ""},
		{"role chunk's reason, then the real end held open", []string{role, contentChunk("hello"), finishOnly, hang}, "hello", "stop", ""},
		{"every chunk's reason, then the real end held open", []string{every("a"), every("b"), finishOnly, hang}, "ab", "stop", ""},
		{"role chunk's reason, then the real end and a break", []string{role, contentChunk("hello"), finishOnly, "data: {broken\n\n"}, "hello", "stop", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for _, s := range tc.steps {
					switch s {
					case pause:
						time.Sleep(time.Second) // the upstream's pace
					case hang:
						<-r.Context().Done()
					default:
						fmt.Fprint(w, s)
						w.(http.Flusher).Flush()
					}
				}
			}))
			t.Cleanup(srv.Close)
			c := newClient(srv.URL, func(o *openai.Options) {
				o.FinishWait, o.MaxRetries = 100*time.Millisecond, -1
				if tc.kind == llm.KindTimeout {
					o.IdleTimeout = 2 * time.Second
				}
			})
			r := stream(testCtx(t), c, "hi", 0)
			if r.text() != tc.text || llm.KindOf(r.err) != tc.kind || (tc.kind == "") != (r.err == nil) {
				t.Fatalf("text %q finish %q err %v, want text %q and kind %q", r.text(), r.res.FinishReason, r.err, tc.text, tc.kind)
			}
			if tc.kind == "" && r.res.FinishReason != tc.finish {
				t.Fatalf("finish %q, want %q", r.res.FinishReason, tc.finish)
			}
		})
	}
}
