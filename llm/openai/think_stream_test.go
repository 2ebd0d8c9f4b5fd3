package openai_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

// thinkRun is one streamed answer's reasoning and text deltas, in order.
type thinkRun struct {
	reasoning, text []string
	order           string // "r" and "t" per callback
	res             llm.Result
	err             error
}

// streamThink streams prompt with maxTokens, receiving reasoning unless
// drop; onReasoning, when set, is called after each reasoning delta.
func streamThink(ctx context.Context, t *testing.T, url, prompt string, maxTokens int, drop bool, onReasoning func()) thinkRun {
	t.Helper()
	return streamThinkAs(ctx, t, nil, url, prompt, maxTokens, drop, onReasoning)
}

// streamThinkAs is streamThink from a client whose model "fake-mini"
// thinks inline as modes says (nil: ThinkAuto).
func streamThinkAs(ctx context.Context, t *testing.T, modes map[string]openai.InlineThinking, url, prompt string, maxTokens int,
	drop bool, onReasoning func()) thinkRun {
	t.Helper()
	var r thinkRun
	req := request(prompt)
	req.MaxTokens = maxTokens
	if !drop {
		req.OnReasoning = func(s string) {
			r.reasoning, r.order = append(r.reasoning, s), r.order+"r"
			if onReasoning != nil {
				onReasoning()
			}
		}
	}
	c := newClient(url, func(o *openai.Options) { o.InlineThinking = modes })
	r.res, r.err = c.Stream(ctx, req, func(s string) { r.text, r.order = append(r.text, s), r.order+"t" })
	checkDeltas(t, r.reasoning)
	checkDeltas(t, r.text)
	return r
}

// TestInlineThinkingStreams: a model thinking inline in its content
// (<think>…</think> first, as DeepSeek-R1 and QwQ without a reasoning
// parser) has its thinking delivered as reasoning and only what follows
// </think> as text, whatever bytes the upstream's chunks cut the tags at;
// without OnReasoning the thinking is dropped, not left in the text.
func TestInlineThinkingStreams(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	cfg := fakeai.Config{Tokens: 6, Reasoning: 9, ReasoningKey: fakeai.KeyThink}
	for _, pieces := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8} {
		t.Run(fmt.Sprintf("pieces=%d", pieces), func(t *testing.T) {
			t.Parallel()
			prompt := fmt.Sprintf("[[fake tokens=6 reasoning=9 reasoning_key=think pieces=%d]] why?", pieces)
			r := streamThink(testCtx(t), t, srv.URL, prompt, 0, false, nil)
			if r.err != nil || r.res.FinishReason != "stop" {
				t.Fatalf("finish %q err %v", r.res.FinishReason, r.err)
			}
			if got, want := strings.Join(r.reasoning, ""), fakeai.ExpectedReasoning(cfg); got != want {
				t.Fatalf("reasoning %q, want %q", got, want)
			}
			if got, want := strings.Join(r.text, ""), fakeai.ExpectedText(cfg); got != want {
				t.Fatalf("text %q, want %q", got, want)
			}
			if strings.Contains(r.order, "tr") {
				t.Fatalf("reasoning after text: %s", r.order)
			}
			dropped := streamThink(testCtx(t), t, srv.URL, prompt, 0, true, nil)
			if got := strings.Join(dropped.text, ""); dropped.err != nil || got != fakeai.ExpectedText(cfg) {
				t.Fatalf("without OnReasoning: text %q err %v", got, dropped.err)
			}
		})
	}
}

// TestInlineThinkingUnclosed: thinking the token limit cut before
// </think> is all reasoning, and the answer is empty and complete
// (finish reason length), with or without OnReasoning.
func TestInlineThinkingUnclosed(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	prompt := "[[fake tokens=6 reasoning=9 reasoning_key=think pieces=2]] why?"
	want := fakeai.ExpectedReasoning(fakeai.Config{Reasoning: 4})
	for _, drop := range []bool{false, true} {
		r := streamThink(testCtx(t), t, srv.URL, prompt, 4, drop, nil)
		got := strings.Join(r.reasoning, "")
		if r.err != nil || r.res.FinishReason != "length" || len(r.text) != 0 || !drop && got != want || drop && got != "" {
			t.Fatalf("drop %v: reasoning %q text %q finish %q err %v, want reasoning %q", drop, got, r.text, r.res.FinishReason, r.err, want)
		}
	}
}

// TestInlineThinkingCancelled: an answer cancelled while the model thinks
// inline has delivered part of the thinking as reasoning and no text.
func TestInlineThinkingCancelled(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	r := streamThink(ctx, t, srv.URL, "[[fake tokens=6 reasoning=40 reasoning_key=think pieces=3 delay=20ms]] why?", 0, false, cancel)
	got, all := strings.Join(r.reasoning, ""), fakeai.ExpectedReasoning(fakeai.Config{Reasoning: 40})
	if !errors.Is(r.err, context.Canceled) || len(r.text) != 0 || got == "" || !strings.HasPrefix(all, got) || got == all {
		t.Fatalf("reasoning %q text %q err %v", got, r.text, r.err)
	}
}

// TestInlineThinkingCut: a stream that breaks off inside inline thinking
// fails with the thinking delivered so far as reasoning (none of a
// close tag's start held back) and no text; one that ends well with an
// empty thinking block and nothing else is no answer at all, and so is
// one with the finish reason "stop" (TestEmptyStream).
func TestInlineThinkingCut(t *testing.T) {
	t.Parallel()
	finish := `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n"
	tests := []struct {
		name, body, reasoning string
		finish                string
		kind                  llm.ErrorKind // "": no error
	}{
		{"cut inside", contentChunk("<thi") + contentChunk("nk>\nhm") + contentChunk("m </th"), "hmm ", "", llm.KindConnection},
		{"no answer at all", contentChunk("<think>\n\n") + contentChunk("</think>\n\n") + "data: [DONE]\n\n", "", "", llm.KindUpstream},
		{"empty answer", contentChunk("<think>\n\n") + contentChunk("</think>\n\n") + finish + "data: [DONE]\n\n", "", "stop", llm.KindUpstream},
		{"thinking only", contentChunk("<think>hmm") + "data: [DONE]\n\n", "hmm", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := sseServer(t, tc.body)
			r := streamThink(testCtx(t), t, srv.URL, "hi", 0, false, nil)
			got := strings.Join(r.reasoning, "")
			if got != tc.reasoning || len(r.text) != 0 || r.res.FinishReason != tc.finish || llm.KindOf(r.err) != tc.kind {
				t.Fatalf("reasoning %q text %q finish %q err %v, want %q, finish %q, kind %q",
					got, r.text, r.res.FinishReason, r.err, tc.reasoning, tc.finish, tc.kind)
			}
		})
	}
}

// TestInlineThinkingOpenStreams: a model whose prompt template opens the
// thinking (DeepSeek-R1's distills, QwQ, Qwen3's Thinking-2507), declared
// ThinkOpen by its id or by "*", streams only the </think>: the thinking
// before it is delivered as reasoning and only what follows as text,
// whatever bytes the chunks cut the tag at, and so is a block that starts
// with its own <think>; without OnReasoning the thinking is dropped. A
// model not named keeps ThinkAuto, which shows it all as text.
func TestInlineThinkingOpenStreams(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	byID := map[string]openai.InlineThinking{"fake-mini": openai.ThinkOpen, "*": openai.ThinkOff}
	all := map[string]openai.InlineThinking{"*": openai.ThinkOpen}
	for _, key := range []fakeai.ReasoningKey{fakeai.KeyThinkOpen, fakeai.KeyThink} {
		cfg := fakeai.Config{Tokens: 6, Reasoning: 9, ReasoningKey: key}
		for _, pieces := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9} {
			t.Run(fmt.Sprintf("%s/pieces=%d", key, pieces), func(t *testing.T) {
				t.Parallel()
				prompt := fmt.Sprintf("[[fake tokens=6 reasoning=9 reasoning_key=%s pieces=%d]] why?", key, pieces)
				for _, modes := range []map[string]openai.InlineThinking{byID, all} {
					r := streamThinkAs(testCtx(t), t, modes, srv.URL, prompt, 0, false, nil)
					if r.err != nil || r.res.FinishReason != "stop" {
						t.Fatalf("%v: finish %q err %v", modes, r.res.FinishReason, r.err)
					}
					if got, want := strings.Join(r.reasoning, ""), fakeai.ExpectedReasoning(cfg); got != want {
						t.Fatalf("%v: reasoning %q, want %q", modes, got, want)
					}
					if got, want := strings.Join(r.text, ""), fakeai.ExpectedText(cfg); got != want {
						t.Fatalf("%v: text %q, want %q", modes, got, want)
					}
					if strings.Contains(r.order, "tr") {
						t.Fatalf("%v: reasoning after text: %s", modes, r.order)
					}
				}
				dropped := streamThinkAs(testCtx(t), t, all, srv.URL, prompt, 0, true, nil)
				if got := strings.Join(dropped.text, ""); dropped.err != nil || got != fakeai.ExpectedText(cfg) {
					t.Fatalf("without OnReasoning: text %q err %v", got, dropped.err)
				}
			})
		}
	}
	t.Run("not named", func(t *testing.T) {
		t.Parallel()
		cfg := fakeai.Config{Tokens: 6, Reasoning: 9, ReasoningKey: fakeai.KeyThinkOpen}
		other := map[string]openai.InlineThinking{"other-model": openai.ThinkOpen}
		r := streamThinkAs(testCtx(t), t, other, srv.URL, "[[fake tokens=6 reasoning=9 reasoning_key=think_open]] why?", 0, false, nil)
		if got, want := strings.Join(r.text, ""), fakeai.ThinkText(cfg)+fakeai.ExpectedText(cfg); r.err != nil || got != want || len(r.reasoning) != 0 {
			t.Fatalf("text %q reasoning %q err %v, want text %q", got, r.reasoning, r.err, want)
		}
	})
}

// TestInlineThinkingOpenUnclosed: thinking of a ThinkOpen model that the
// token limit cut before </think> is all reasoning, and the answer is
// empty and complete (finish reason length).
func TestInlineThinkingOpenUnclosed(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	modes := map[string]openai.InlineThinking{"fake-mini": openai.ThinkOpen}
	r := streamThinkAs(testCtx(t), t, modes, srv.URL, "[[fake tokens=6 reasoning=9 reasoning_key=think_open pieces=2]] why?", 4, false, nil)
	got, want := strings.Join(r.reasoning, ""), fakeai.ExpectedReasoning(fakeai.Config{Reasoning: 4})
	if r.err != nil || r.res.FinishReason != "length" || len(r.text) != 0 || got != want {
		t.Fatalf("reasoning %q text %q finish %q err %v, want reasoning %q", got, r.text, r.res.FinishReason, r.err, want)
	}
}

// TestInlineThinkingOff: a model declared ThinkOff that starts its answer
// with a literal <think> (explaining the tag) has its text delivered byte
// for byte, however the chunks cut the tags, where ThinkAuto takes it up
// to the </think> for thinking; inline thinking stays text too.
func TestInlineThinkingOff(t *testing.T) {
	t.Parallel()
	const answer = "<think> is a tag name I made up.\n\nIt marks 🤔 thinking: </think> ends it."
	finish := `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n"
	off := map[string]openai.InlineThinking{"fake-mini": openai.ThinkOff}
	for _, n := range []int{1, 3, 7, len(answer)} {
		t.Run(fmt.Sprintf("pieces=%d", n), func(t *testing.T) {
			t.Parallel()
			var body strings.Builder
			for _, p := range fakeai.Pieces(answer, n) {
				body.WriteString(contentChunk(p))
			}
			srv, _ := sseServer(t, body.String()+finish+"data: [DONE]\n\n")
			r := streamThinkAs(testCtx(t), t, off, srv.URL, "hi", 0, false, nil)
			if got := strings.Join(r.text, ""); r.err != nil || got != answer || len(r.reasoning) != 0 {
				t.Fatalf("text %q reasoning %q err %v, want text %q", got, r.reasoning, r.err, answer)
			}
			auto := streamThink(testCtx(t), t, srv.URL, "hi", 0, false, nil)
			if got := strings.Join(auto.text, ""); got != " ends it." {
				t.Fatalf("auto: text %q reasoning %q, want what follows </think>", got, auto.reasoning)
			}
		})
	}
	t.Run("inline thinking", func(t *testing.T) {
		t.Parallel()
		srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
		cfg := fakeai.Config{Tokens: 6, Reasoning: 9, ReasoningKey: fakeai.KeyThink}
		r := streamThinkAs(testCtx(t), t, off, srv.URL, "[[fake tokens=6 reasoning=9 reasoning_key=think pieces=3]] why?", 0, false, nil)
		if got, want := strings.Join(r.text, ""), fakeai.ThinkText(cfg)+fakeai.ExpectedText(cfg); r.err != nil || got != want || len(r.reasoning) != 0 {
			t.Fatalf("text %q reasoning %q err %v, want text %q", got, r.reasoning, r.err, want)
		}
	})
}

// TestHeldTextOnError: text the inline-thinking splitter still holds (a
// "<" that may open <think>) when the stream fails is delivered before
// the failure, as it is at the answer's end; before, it was lost, and an
// answer of "<" alone was stored empty. What was delivered is not asked
// again: a 5xx before any other text is then not retried.
func TestHeldTextOnError(t *testing.T) {
	t.Parallel()
	const errorEvent = `data: {"error":{"message":"boom","type":"server_error","code":500}}` + "\n\n"
	tests := []struct {
		name, body, text string
		kind             llm.ErrorKind
	}{
		{"an error event after a lone <", contentChunk("<") + errorEvent, "<", llm.KindUpstream},
		{"an error event after <th", contentChunk("<th") + errorEvent, "<th", llm.KindUpstream},
		{"the body's end after a lone <", contentChunk("<"), "<", llm.KindConnection},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, requests := sseServer(t, tc.body)
			r := streamThink(testCtx(t), t, srv.URL, "hi", 0, false, nil)
			if text := strings.Join(r.text, ""); text != tc.text || len(r.reasoning) != 0 || llm.KindOf(r.err) != tc.kind {
				t.Fatalf("text %q reasoning %q err %v, want text %q and %s", text, r.reasoning, r.err, tc.text, tc.kind)
			}
			if n := requests.Load(); n != 1 {
				t.Fatalf("%d requests, want 1: text was delivered", n)
			}
		})
	}
}
