package fakeai_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"chatd/llm/fakeai"
)

// TestReasoningAndSurrogatesOnTheWire: reasoning chunks come first, in the
// field the request asks for; surrogates mode cuts each emoji between the
// two escapes of its UTF-16 pair across two chunks; the wire text decodes
// to the expected reasoning and content.
func TestReasoningAndSurrogatesOnTheWire(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	resp := post(t, testCtx(t), srv.URL, streamBody("[[fake tokens=8 reasoning=4 reasoning_key=mixed surrogates=true]] hi", true), nil)
	raw, _ := io.ReadAll(resp.Body)
	body := string(raw)
	for _, want := range []string{`"delta":{"reasoning_content":"Let "}`, `"delta":{"reasoning":"me "}`, `\ud83d"}`, `{"content":"\ude42 "}`} {
		if !strings.Contains(body, want) {
			t.Fatalf("stream lacks %s:\n%s", want, body)
		}
	}
	if strings.Index(body, `"reasoning`) > strings.Index(body, `"content":"Hello`) {
		t.Fatal("reasoning came after the content")
	}
	var reasoning, content strings.Builder
	var usage *struct {
		CompletionTokens int `json:"completion_tokens"`
	}
	for _, line := range strings.Split(body, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Delta map[string]string `json:"delta"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatal(err)
		}
		if c.Usage != nil {
			usage = c.Usage
		}
		for _, ch := range c.Choices {
			reasoning.WriteString(ch.Delta["reasoning_content"] + ch.Delta["reasoning"])
			content.WriteString(ch.Delta["content"])
		}
	}
	cfg := fakeai.Config{Tokens: 8, Reasoning: 4}
	if reasoning.String() != fakeai.ExpectedReasoning(cfg) {
		t.Fatalf("reasoning %q, want %q", reasoning.String(), fakeai.ExpectedReasoning(cfg))
	}
	// Decoding each chunk on its own turns the halves into U+FFFD: what a
	// client that does not join them shows.
	if want := strings.ReplaceAll(fakeai.ExpectedText(cfg), "🙂", "\uFFFD\uFFFD"); content.String() != want {
		t.Fatalf("content %q, want %q", content.String(), want)
	}
	if usage == nil || usage.CompletionTokens != 12 {
		t.Fatalf("usage %+v, want 12 completion tokens (8 content + 4 reasoning)", usage)
	}
}

// TestContextRefusalAndList: a prompt over context=N is refused as OpenAI
// does; the model list reports ContextLength and waits ModelsDelay.
func TestContextRefusalAndList(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{ContextLength: 4096})
	resp := post(t, testCtx(t), srv.URL, streamBody("[[fake context=2]] one two three", false), nil)
	var e struct {
		Error struct{ Message, Code string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != http.StatusBadRequest ||
		e.Error.Code != "context_length_exceeded" || !strings.Contains(e.Error.Message, "maximum context length is 2 tokens") {
		t.Fatalf("status %d, %+v, %v", resp.StatusCode, e, err)
	}
	list := func() string {
		r, err := http.Get(srv.URL + "/models")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}
	if l := list(); !strings.Contains(l, `"context_length":4096`) {
		t.Fatalf("list %s", l)
	}
	srv.SetModelsDelay(150 * time.Millisecond)
	start := time.Now()
	list()
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("the list came after %v despite a 150ms delay", d)
	}
}

// TestInlineThinking: reasoning_key=think streams the reasoning inside the
// content, between <think> and </think>, before the answer;
// reasoning_key=think_open the same without the <think> (the template
// opened it), and it cut by max_tokens without the </think> too.
func TestInlineThinking(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	tests := []struct {
		key       fakeai.ReasoningKey
		maxTokens int
		want      string
	}{
		{fakeai.KeyThink, 0, "<think>\nLet me think step </think>\n\nHello héllo world "},
		{fakeai.KeyThinkOpen, 0, "Let me think step </think>\n\nHello héllo world "},
		{fakeai.KeyThinkOpen, 2, "Let me "},
	}
	for _, tc := range tests {
		marker := "[[fake tokens=3 reasoning=4 reasoning_key=" + string(tc.key) + "]]"
		body := streamBody(marker, false)
		if tc.maxTokens > 0 {
			body["max_tokens"] = tc.maxTokens
		}
		raw, _ := io.ReadAll(post(t, testCtx(t), srv.URL, body, nil).Body)
		chunks, done := parseSSE(t, raw)
		var content strings.Builder
		for _, c := range chunks {
			if len(c.Choices) > 0 && c.Choices[0].Delta.Content != nil {
				content.WriteString(*c.Choices[0].Delta.Content)
			}
		}
		cfg := fakeai.Config{Tokens: 3, Reasoning: 4, ReasoningKey: tc.key}
		if tc.maxTokens == 0 && fakeai.ThinkText(cfg)+fakeai.ExpectedText(cfg) != tc.want {
			t.Fatalf("%s: ThinkText and ExpectedText %q, want %q", tc.key, fakeai.ThinkText(cfg)+fakeai.ExpectedText(cfg), tc.want)
		}
		if !done || content.String() != tc.want {
			t.Fatalf("%s max_tokens=%d: content %q, want %q", tc.key, tc.maxTokens, content.String(), tc.want)
		}
	}
}

// TestInlineThinkingPieces: pieces=N sends the inline thinking, tags
// included, and the tokens as deltas of at most N bytes cut between
// characters, the whole content unchanged.
func TestInlineThinkingPieces(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	tests := []struct {
		pieces int
		first  []string // the first deltas of content after the role chunk's
	}{
		{1, []string{"<", "t", "h", "i", "n", "k", ">", "\n"}},
		{3, []string{"<th", "ink", ">\nL", "et ", "me ", "thi", "nk ", "ste", "p "}},
		{7, []string{"<think>", "\nLet "}},
	}
	for _, tc := range tests {
		marker := fmt.Sprintf("[[fake tokens=5 reasoning=9 reasoning_key=think pieces=%d]]", tc.pieces)
		raw, _ := io.ReadAll(post(t, testCtx(t), srv.URL, streamBody(marker, false), nil).Body)
		chunks, done := parseSSE(t, raw)
		var deltas []string
		for _, c := range chunks {
			if c := c.Choices; len(c) > 0 && c[0].Delta.Content != nil && *c[0].Delta.Content != "" {
				deltas = append(deltas, *c[0].Delta.Content)
			}
		}
		cfg := fakeai.Config{Tokens: 5, Reasoning: 9, ReasoningKey: fakeai.KeyThink}
		want := fakeai.ThinkText(cfg) + fakeai.ExpectedText(cfg)
		if !done || strings.Join(deltas, "") != want || len(deltas) < len(tc.first) || !slices.Equal(deltas[:len(tc.first)], tc.first) {
			t.Fatalf("pieces=%d: deltas %q, want %q starting with %q", tc.pieces, deltas, want, tc.first)
		}
		for _, d := range deltas {
			if len(d) > tc.pieces && utf8.RuneCountInString(d) > 1 || !utf8.ValidString(d) {
				t.Fatalf("pieces=%d: delta %q", tc.pieces, d)
			}
		}
	}
}

// TestContentParts: reasoning_key=parts sends the content as Mistral's
// list of parts: thinking parts with the reasoning, then text parts.
func TestContentParts(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	raw, _ := io.ReadAll(post(t, testCtx(t), srv.URL, streamBody("[[fake tokens=3 reasoning=2 reasoning_key=parts]]", false), nil).Body)
	type part struct {
		Type, Text string
		Thinking   []struct{ Type, Text string }
	}
	var reasoning, text strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		var c struct {
			Choices []struct {
				Delta struct{ Content json.RawMessage }
			}
		}
		payload, ok := strings.CutPrefix(line, "data: ")
		if !ok || payload == "[DONE]" || json.Unmarshal([]byte(payload), &c) != nil || len(c.Choices) == 0 {
			continue
		}
		var parts []part
		if json.Unmarshal(c.Choices[0].Delta.Content, &parts) != nil {
			continue // the role chunk's "" and the finish chunk
		}
		for _, p := range parts {
			text.WriteString(p.Text)
			for _, th := range p.Thinking {
				reasoning.WriteString(th.Text)
			}
		}
	}
	cfg := fakeai.Config{Tokens: 3, Reasoning: 2}
	if reasoning.String() != fakeai.ExpectedReasoning(cfg) || text.String() != fakeai.ExpectedText(cfg) {
		t.Fatalf("reasoning %q text %q from\n%s", reasoning.String(), text.String(), raw)
	}
}

// TestReasoningSpendsTheBudget: as a reasoning model does, the reasoning
// is counted against max_tokens (or max_completion_tokens) before the
// answer: a budget smaller than the reasoning leaves no answer (and an
// inline <think> block unclosed), finish_reason "length"; the request's
// reasoning_effort is recorded.
func TestReasoningSpendsTheBudget(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	cfg := fakeai.Config{Tokens: 4, Reasoning: 6}
	tests := []struct {
		name, marker, field, effort string
		budget                      int
		wantReasoning, wantContent  string
		wantFinish                  string
		wantCompletion              int
	}{
		{"no budget", "", "", "", 0, fakeai.ExpectedReasoning(cfg), fakeai.ExpectedText(cfg), "stop", 10},
		{"room for both", "", "max_completion_tokens", "low", 10, fakeai.ExpectedReasoning(cfg), fakeai.ExpectedText(cfg), "stop", 10},
		{"answer cut", "", "max_tokens", "", 8, fakeai.ExpectedReasoning(cfg), fakeai.ExpectedPrefix(cfg, 2), "length", 8},
		{"reasoning fills it", "", "max_completion_tokens", "minimal", 6, fakeai.ExpectedReasoning(cfg), "", "length", 6},
		{"reasoning cut", "", "max_tokens", "", 3, "Let me think ", "", "length", 3},
		{"inline thinking cut", " reasoning_key=think", "max_tokens", "", 3, "", "<think>\nLet me think ", "length", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := streamBody("[[fake tokens=4 reasoning=6"+tc.marker+"]] "+tc.name, true)
			if tc.field != "" {
				body[tc.field] = tc.budget
			}
			if tc.effort != "" {
				body["reasoning_effort"] = tc.effort
			}
			reasoning, content, finish, completion := readReasoningStream(t, post(t, testCtx(t), srv.URL, body, nil))
			if reasoning != tc.wantReasoning || content != tc.wantContent || finish != tc.wantFinish || completion != tc.wantCompletion {
				t.Fatalf("reasoning %q content %q finish %q completion tokens %d,\nwant %q %q %q %d",
					reasoning, content, finish, completion, tc.wantReasoning, tc.wantContent, tc.wantFinish, tc.wantCompletion)
			}
			for _, rec := range srv.Recorded() {
				if strings.Contains(fakeai.StripMarkers(rec.Messages[1].Content), tc.name) &&
					(rec.ReasoningEffort != tc.effort || rec.MaxTokens != tc.budget) {
					t.Fatalf("recorded effort %q max tokens %d, want %q %d", rec.ReasoningEffort, rec.MaxTokens, tc.effort, tc.budget)
				}
			}
		})
	}
}

// readReasoningStream reads a stream's reasoning and content text, its
// finish reason and its usage's completion tokens.
func readReasoningStream(t *testing.T, resp *http.Response) (reasoning, content, finish string, completion int) {
	t.Helper()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r, c strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var ch struct {
			Choices []struct {
				Delta        map[string]string `json:"delta"`
				FinishReason *string           `json:"finish_reason"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			t.Fatal(err)
		}
		if ch.Usage != nil {
			completion = ch.Usage.CompletionTokens
		}
		for _, x := range ch.Choices {
			r.WriteString(x.Delta["reasoning_content"] + x.Delta["reasoning"])
			c.WriteString(x.Delta["content"])
			if x.FinishReason != nil {
				finish = *x.FinishReason
			}
		}
	}
	return r.String(), c.String(), finish, completion
}

// TestRefuseField: refuse=F answers a request carrying F with OpenAI's
// 400 naming the parameter, and serves a request without it.
func TestRefuseField(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	tests := []struct {
		refuse string
		fields map[string]any
		want   int
	}{
		{"max_tokens", map[string]any{"max_tokens": 5}, http.StatusBadRequest},
		{"max_tokens", map[string]any{"max_completion_tokens": 5}, http.StatusOK},
		{"max_completion_tokens", map[string]any{"max_completion_tokens": 5}, http.StatusBadRequest},
		{"max_completion_tokens", map[string]any{"max_tokens": 5}, http.StatusOK},
		{"reasoning_effort", map[string]any{"reasoning_effort": "low"}, http.StatusBadRequest},
		{"reasoning_effort", map[string]any{}, http.StatusOK},
		{"stream_options", map[string]any{"stream_options": map[string]any{"include_usage": true}}, http.StatusBadRequest},
		{"stream_options", map[string]any{}, http.StatusOK},
		// Several: the first the request carries is refused.
		{"temperature,top_p", map[string]any{"temperature": 0.2, "top_p": 0.9}, http.StatusBadRequest},
		{"temperature,top_p", map[string]any{"top_p": 0.9}, http.StatusBadRequest},
		{"temperature,top_p", map[string]any{"stop": []string{"x"}}, http.StatusOK},
		{"none", map[string]any{"max_tokens": 5}, http.StatusOK},
	}
	for _, tc := range tests {
		body := streamBody("hi [[fake tokens=2 refuse="+tc.refuse+"]]", false)
		for k, v := range tc.fields {
			body[k] = v
		}
		resp := post(t, testCtx(t), srv.URL, body, nil)
		var e struct {
			Error struct{ Message, Code, Param string }
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("refuse=%s %v: status %d, want %d: %s", tc.refuse, tc.fields, resp.StatusCode, tc.want, raw)
		}
		if tc.want != http.StatusBadRequest {
			continue
		}
		field := tc.refuse // the first of its fields sent
		for _, f := range strings.Split(tc.refuse, ",") {
			if _, sent := tc.fields[f]; sent {
				field = f
				break
			}
		}
		if err := json.Unmarshal(raw, &e); err != nil || e.Error.Param != field ||
			e.Error.Code != "unsupported_parameter" || e.Error.Message != fakeai.Refusals[field] {
			t.Fatalf("refuse=%s: %s (%v)", tc.refuse, raw, err)
		}
	}
	rec, _ := srv.LastRequest()
	if rec.MaxTokensField != "max_tokens" || rec.MaxTokens != 5 {
		t.Fatalf("recorded %q %d", rec.MaxTokensField, rec.MaxTokens)
	}
}

// TestMaxOutput: max_output=N refuses a request asking for more than N
// tokens, in either field, with OpenAI's 400 naming the field, and serves
// one asking for N or fewer, or setting none.
func TestMaxOutput(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	tests := []struct {
		fields map[string]any
		want   string // the refusal's message; "": served
	}{
		{map[string]any{"max_tokens": 1024},
			"max_tokens is too large: 1024. This model supports at most 500 completion tokens, whereas you provided 1024."},
		{map[string]any{"max_completion_tokens": 501},
			"max_completion_tokens is too large: 501. This model supports at most 500 completion tokens, whereas you provided 501."},
		{map[string]any{"max_tokens": 500}, ""},
		{map[string]any{}, ""},
	}
	for _, tc := range tests {
		body := streamBody("hi [[fake tokens=2 max_output=500]]", false)
		for k, v := range tc.fields {
			body[k] = v
		}
		resp := post(t, testCtx(t), srv.URL, body, nil)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if tc.want == "" {
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%v: status %d, want 200: %s", tc.fields, resp.StatusCode, raw)
			}
			continue
		}
		var e struct {
			Error struct{ Message, Param string }
		}
		if err := json.Unmarshal(raw, &e); err != nil || resp.StatusCode != http.StatusBadRequest || e.Error.Message != tc.want {
			t.Fatalf("%v: status %d, %s (%v); want 400, %q", tc.fields, resp.StatusCode, raw, err, tc.want)
		}
	}
}
