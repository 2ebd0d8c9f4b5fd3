package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// unmarshalChunk is the reference the chunk decoder must match: payload
// decoded as go-openai's Recv decodes it, then read as applyChunk read
// go-openai's type before chatd decoded chunks itself. It is written out
// here, apart from fieldsOf, so that a mistake in either shows. The
// top-level "error" member, which go-openai's type lacks, is read as
// errorMember reads it, but from every chunk.
func unmarshalChunk(payload []byte) (chunkFields, error) {
	var r goopenai.ChatCompletionStreamResponse
	if err := json.Unmarshal(payload, &r); err != nil {
		return chunkFields{}, err
	}
	var f chunkFields
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(payload, &e) == nil && len(e.Error) > 0 && string(e.Error) != "null" {
		f.err = &goopenai.APIError{}
		if json.Unmarshal(e.Error, f.err) != nil {
			f.err = &goopenai.APIError{Message: string(e.Error)}
			_ = json.Unmarshal(e.Error, &f.err.Message)
		}
	}
	if u := r.Usage; u != nil {
		f.usage = &llm.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	}
	for _, ch := range r.Choices {
		if ch.Index != 0 {
			continue
		}
		f.choices = append(f.choices, choiceFields{finish: string(ch.FinishReason),
			content: ch.Delta.Content, reasoning: ch.Delta.ReasoningContent, refusal: ch.Delta.Refusal})
	}
	return f, nil
}

// describe renders every field of f, so two results compare by their
// descriptions.
func describe(f chunkFields) string {
	var sb strings.Builder
	if f.usage == nil {
		sb.WriteString("usage <nil>")
	} else {
		fmt.Fprintf(&sb, "usage %d/%d/%d", f.usage.PromptTokens, f.usage.CompletionTokens, f.usage.TotalTokens)
	}
	for _, ch := range f.choices {
		fmt.Fprintf(&sb, "; finish %q content %q reasoning %q refusal %q", ch.finish, ch.content, ch.reasoning, ch.refusal)
	}
	if f.err != nil {
		fmt.Fprintf(&sb, "; error code %#v message %q type %q", f.err.Code, f.err.Message, f.err.Type)
	}
	return sb.String()
}

// checkDecode fails unless the fast path's result for payload, when it
// takes it, and decode's result and error, always, are the reference's;
// it reports whether the fast path took payload. d has decoded chunks
// before, so a result left over from one of them shows too.
func checkDecode(t *testing.T, d *chunkDecoder, payload []byte) (fast bool) {
	t.Helper()
	want, wantErr := unmarshalChunk(payload)
	if fast = d.fast(payload); fast {
		if wantErr != nil {
			t.Fatalf("fast path took %q, which json.Unmarshal rejects: %v", payload, wantErr)
		}
		if got := describe(d.fields); got != describe(want) {
			t.Fatalf("fast path decodes %q to\n%s\nwant\n%s", payload, got, describe(want))
		}
	}
	got, err := d.decode(payload)
	if fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Fatalf("decode(%q): error %v, want %v", payload, err, wantErr)
	}
	if err == nil && describe(*got) != describe(want) {
		t.Fatalf("decode(%q) =\n%s\nwant\n%s", payload, describe(*got), describe(want))
	}
	return fast
}

// newTestDecoder returns a decoder that has decoded a chunk with usage
// and two choices of index 0.
func newTestDecoder(t *testing.T) *chunkDecoder {
	d := &chunkDecoder{}
	warm := `{"choices":[{"delta":{"content":"a","refusal":"r"},"finish_reason":"stop"},{"delta":{"reasoning_content":"b"}}],"usage":{"total_tokens":7}}`
	if f, err := d.decode([]byte(warm)); err != nil || len(f.choices) != 2 || f.usage == nil {
		t.Fatalf("warm-up chunk: %+v, %v", f, err)
	}
	return d
}

// chunkCases are real chunk shapes and the edges of what the fast path
// takes; fast is whether it must take the payload (otherwise json.Unmarshal
// decodes it).
var chunkCases = []struct {
	name, in string
	fast     bool
}{
	{"fakeai stamped", `{"id":"chatcmpl-fake123","object":"chat.completion.chunk","created":1764750000,"model":"fake-mini","system_fingerprint":"fp_fakeai","choices":[{"index":0,"delta":{"content":"[ts:1234567890123456] lorem "},"logprobs":null,"finish_reason":null}],"usage":null,"x_fake_ts":1234567890123456}`, true},
	{"openai with obfuscation", `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","service_tier":"default","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hi","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"a1b2"}`, true},
	{"openai first chunk", `{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`, true},
	{"finish reason", `{"id":"c","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`, true},
	{"finish reason escaped", `{"choices":[{"delta":{},"finish_reason":"st\u006fp"}]}`, true},
	{"usage-only final chunk", `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}`, true},
	{"usage with null details", `{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"prompt_tokens_details":null,"completion_tokens_details":null}}`, true},
	{"usage with details", `{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`, false},
	{"usage empty", `{"usage":{}}`, true},
	{"usage counts null, unknown member", `{"usage":{"prompt_tokens":null,"total_tokens":4,"cost":0.5}}`, true},
	{"usage not an object", `{"usage":5}`, false},
	{"usage negative", `{"usage":{"prompt_tokens":-3,"completion_tokens":-0,"total_tokens":-3}}`, true},
	{"deepseek reasoning", `{"id":"d","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"Let me think"},"logprobs":null,"finish_reason":null}]}`, true},
	{"reasoning and refusal", `{"choices":[{"delta":{"reasoning_content":"r","refusal":"no","content":""}}]}`, true},
	{"refusal", `{"choices":[{"index":0,"delta":{"refusal":"I can't help with that."},"finish_reason":null}]}`, true},
	{"multi-choice", `{"choices":[{"index":1,"delta":{"content":"b"}},{"index":0,"delta":{"content":"a"},"finish_reason":"length"},{"index":2,"delta":{"content":"c"}}]}`, true},
	{"two choices of index 0", `{"choices":[{"index":0,"delta":{"content":"a"}},{"delta":{"content":"b"}}]}`, true},
	{"negative and minus zero index", `{"choices":[{"index":-1,"delta":{"content":"x"}},{"index":-0,"delta":{"content":"y"}}]}`, true},
	{"nulls everywhere", `{"id":null,"object":null,"created":null,"model":null,"system_fingerprint":null,"prompt_annotations":null,"prompt_filter_results":null,"choices":[null,{"index":null,"delta":null,"logprobs":null,"finish_reason":null,"content_filter_results":null}],"usage":null}`, true},
	{"null delta fields", `{"choices":[{"delta":{"content":null,"role":null,"function_call":null,"tool_calls":null,"refusal":null,"reasoning_content":null}}]}`, true},
	{"choices null", `{"choices":null}`, true},
	{"choices empty", `{"choices":[ ]}`, true},
	{"empty object", `{}`, true},
	{"escapes", `{"choices":[{"delta":{"content":"\"\\\/\b\f\n\r\t\u00e9\u0000\ud83d\ude42<>"}}]}`, true},
	{"upper-case escapes", `{"choices":[{"delta":{"content":"\u00C9\uD83D\uDE42"}}]}`, true},
	{"lone high surrogate at the end", `{"choices":[{"delta":{"content":"a\ud83d"}}]}`, true},
	{"lone low surrogate", `{"choices":[{"delta":{"content":"\ude42b"}}]}`, true},
	{"high surrogate then a letter escape", `{"choices":[{"delta":{"content":"\ud83d\u0041"}}]}`, true},
	{"high surrogate twice, then low", `{"choices":[{"delta":{"content":"\ud83d\ud83d\ude42"}}]}`, true},
	{"high surrogate then a plain escape", `{"choices":[{"delta":{"content":"\ud83d\n"}}]}`, true},
	{"escaped backslash before u", `{"choices":[{"delta":{"content":"\\ud83d"}}]}`, true},
	{"non-ASCII text", `{"choices":[{"delta":{"content":"héllo 🙂 日本"}}]}`, true},
	{"invalid UTF-8", "{\"choices\":[{\"delta\":{\"content\":\"a\xffb\xe2\x82\"}}]}", true},
	{"invalid UTF-8 beside an escape", "{\"choices\":[{\"delta\":{\"content\":\"\\n\xc3\"}}]}", true},
	{"whitespace", " { \"id\" : \"x\" ,\r\n\t\"choices\" : [ { \"delta\" : { \"content\" : \"a b\" } } ] } \r\n", true},
	{"unknown members of any kind", `{"x_fake_ts":-1.5e+3,"a":[1,{"b":[true,false,null]}],"c":{},"d":"\u00e9","choices":[{"e":1,"delta":{"f":[],"content":"x"}}]}`, true},
	{"created of 18 digits", `{"created":123456789012345678}`, true},
	{"created of 19 digits", `{"created":1234567890123456789}`, false},
	{"created too large", `{"created":12345678901234567890}`, false},
	{"created a fraction", `{"created":1.5}`, false},
	{"index a fraction", `{"choices":[{"index":1.0,"delta":{"content":"x"}}]}`, false},
	{"index an exponent", `{"choices":[{"index":0e0,"delta":{"content":"x"}}]}`, false},
	{"index a string", `{"choices":[{"index":"0","delta":{"content":"x"}}]}`, false},
	{"content a number", `{"choices":[{"delta":{"content":2}}]}`, false},
	{"id a number", `{"id":5,"choices":[{"delta":{"content":"x"}}]}`, false},
	{"model an array", `{"model":["m"]}`, false},
	{"role an object", `{"choices":[{"delta":{"role":{}}}]}`, false},
	{"finish reason true", `{"choices":[{"finish_reason":true}]}`, false},
	{"choices an object", `{"choices":{"delta":{"content":"x"}}}`, false},
	{"delta a string", `{"choices":[{"delta":"x"}]}`, false},
	{"choice a number", `{"choices":[5]}`, false},
	{"tool calls", `{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"t","function":{"name":"f","arguments":"{}"}}]}}]}`, false},
	{"function call", `{"choices":[{"delta":{"function_call":{"name":"f"}}}]}`, false},
	{"tool calls of a wrong type", `{"choices":[{"delta":{"tool_calls":[{"index":"0"}]}}]}`, false},
	{"function call of a wrong type", `{"choices":[{"delta":{"function_call":{"name":5}}}]}`, false},
	{"logprobs", `{"choices":[{"delta":{"content":"x"},"logprobs":{"content":[{"token":"x","logprob":-0.1,"top_logprobs":[]}]}}]}`, false},
	{"azure filters", `{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{"content":"x"},"index":0}],"prompt_filter_results":[{"prompt_index":0}]}`, false},
	{"prompt annotations", `{"prompt_annotations":[]}`, false},
	{"error chunk", `{"error":{"message":"overloaded","type":"server_error"}}`, false},
	{"error after other members", `{"id":"x","error":{"message":"m"}}`, false},
	{"openrouter error chunk", `{"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"anthropic/claude","provider":"Anthropic","error":{"code":502,"message":"Provider disconnected unexpectedly"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error","native_finish_reason":"error"}]}`, false},
	{"error null", `{"error":null,"choices":[]}`, false},
	{"error a string", `{"error":"overloaded"}`, false},
	{"error a number", `{"error":5}`, false},
	{"error without a message", `{"error":{"code":"x"}}`, false},
	{"error in upper case", `{"ERROR":{"message":"m"}}`, false},
	{"error name escaped", `{"\u0065rror":{"message":"m"}}`, false},
	{"duplicate field", `{"choices":[],"choices":[{"delta":{"content":"x"}}]}`, false},
	{"duplicate index", `{"choices":[{"index":1,"index":0}]}`, false},
	{"duplicate content", `{"choices":[{"delta":{"content":"a","content":"b"}}]}`, false},
	{"duplicate delta", `{"choices":[{"delta":{"content":"a"},"delta":{"refusal":"b"}}]}`, false},
	{"duplicate usage count", `{"usage":{"total_tokens":1,"total_tokens":2}}`, false},
	{"duplicate unknown member", `{"x":1,"x":"y","choices":[]}`, true},
	{"field name in another case", `{"Choices":[{"delta":{"content":"x"}}]}`, false},
	{"field name in another case inside a choice", `{"choices":[{"Index":1,"index":0}]}`, false},
	{"content in upper case", `{"choices":[{"delta":{"CONTENT":"x"}}]}`, false},
	{"usage count in another case", `{"usage":{"Total_Tokens":3}}`, false},
	{"escaped name", `{"choices":[{"delta":{"\u0063ontent":"x"}}]}`, false},
	{"non-ASCII name", `{"choices":[{"ﬁnish_reason":"x"}]}`, false},
	{"kelvin sign name", `{"choices":[{"delta":{"\u212aey":"x"}}],"usage":{"total_to\u212aens":1}}`, false},
	{"top level null", `null`, false},
	{"not an object", `[1]`, false},
	{"trailing garbage", `{"choices":[]}x`, false},
	{"two objects", `{}{}`, false},
	{"unterminated", `{"choices":[{"delta":{"content":"x`, false},
	{"unterminated array", `{"choices":[`, false},
	{"unterminated after a choice", `{"choices":[{},`, false},
	{"bad escape", `{"choices":[],"id":"\x"}`, false},
	{"short unicode escape", `{"id":"\u12"}`, false},
	{"control character in a string", "{\"choices\":[{\"delta\":{\"content\":\"a\tb\"}}]}", false},
	{"leading zero", `{"created":01}`, false},
	{"bare minus", `{"created":-}`, false},
	{"fraction without digits", `{"created":1.}`, false},
	{"exponent without digits", `{"created":1e}`, false},
	{"bad literal", `{"usage":nul}`, false},
	{"trailing comma", `{"choices":[],}`, false},
	{"trailing comma in choices", `{"choices":[{},]}`, false},
	{"missing colon", `{"choices"[]}`, false},
	{"form feed is not JSON space", "\f{}", false},
	{"empty", ``, false},
	{"too deep", `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, false},
}

// TestDecodeChunk checks the fast path against json.Unmarshal into
// go-openai's type for every shape in chunkCases, and that it takes the
// ones it should.
func TestDecodeChunk(t *testing.T) {
	t.Parallel()
	for _, tc := range chunkCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if fast := checkDecode(t, newTestDecoder(t), []byte(tc.in)); fast != tc.fast {
				t.Fatalf("fast path took %q: %v, want %v", tc.in, fast, tc.fast)
			}
		})
	}
}

// FuzzDecodeChunk checks the fast path against json.Unmarshal into
// go-openai's type for any payload: the same fields, the same error.
func FuzzDecodeChunk(f *testing.F) {
	for _, tc := range chunkCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkDecode(t, newTestDecoder(t), payload)
	})
}

// TestDescribeSeesEveryField checks that the comparison of results
// compares: changing any field chatd reads changes the description.
func TestDescribeSeesEveryField(t *testing.T) {
	t.Parallel()
	base := func() chunkFields {
		return chunkFields{usage: &llm.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3},
			choices: []choiceFields{{finish: "f", content: "c", reasoning: "r", refusal: "x"}},
			err:     &goopenai.APIError{Code: 1, Message: "m", Type: "t"}}
	}
	mutations := map[string]func(*chunkFields){
		"no usage":    func(f *chunkFields) { f.usage = nil },
		"prompt":      func(f *chunkFields) { f.usage.PromptTokens++ },
		"completion":  func(f *chunkFields) { f.usage.CompletionTokens++ },
		"total":       func(f *chunkFields) { f.usage.TotalTokens++ },
		"no choice":   func(f *chunkFields) { f.choices = nil },
		"two choices": func(f *chunkFields) { f.choices = append(f.choices, choiceFields{}) },
		"finish":      func(f *chunkFields) { f.choices[0].finish += "!" },
		"content":     func(f *chunkFields) { f.choices[0].content += "!" },
		"reasoning":   func(f *chunkFields) { f.choices[0].reasoning += "!" },
		"refusal":     func(f *chunkFields) { f.choices[0].refusal += "!" },
		"no error":    func(f *chunkFields) { f.err = nil },
		"error code":  func(f *chunkFields) { f.err.Code = 2 },
		"error text":  func(f *chunkFields) { f.err.Message += "!" },
		"error type":  func(f *chunkFields) { f.err.Type += "!" },
	}
	for name, mutate := range mutations {
		f := base()
		mutate(&f)
		if describe(f) == describe(base()) {
			t.Errorf("%s: description unchanged: %s", name, describe(f))
		}
	}
}

// TestDecodeFakeStreams decodes every data line of real fakeai streams
// (usage, finish reasons, both reasoning spellings after the SSE fixer's
// rename, split surrogates, markdown and script payloads, a mid-stream
// error, a malformed chunk) as the reference does, and the ordinary
// chunks take the fast path.
func TestDecodeFakeStreams(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	tests := []struct {
		name string
		cfg  string // a [[fake ...]] marker
		fast int    // at least this many lines take the fast path
	}{
		{"text", "tokens=30", 32},
		{"markdown", "mode=markdown", 20},
		{"xss", "mode=xss", 5},
		{"reasoning_content", "tokens=5 reasoning=6", 12},
		{"reasoning", "tokens=5 reasoning=6 reasoning_key=reasoning", 12},
		{"mixed reasoning", "tokens=5 reasoning=6 reasoning_key=mixed", 12},
		{"surrogates", "tokens=20 surrogates=true", 20},
		{"stamped", "tokens=10 stamp=all", 12},
		{"error mid-stream", "tokens=10 fault=error_mid after=3", 3},
		{"openrouter error chunk", "tokens=10 fault=error_chunk after=3", 3},
		{"malformed chunk", "tokens=10 fault=malformed after=3", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fixed, err := io.ReadAll(newSSEFixer(io.NopCloser(bytes.NewReader(fetchStream(t, srv.URL, tc.cfg, 12)))))
			if err != nil {
				t.Fatal(err)
			}
			d, fast := newTestDecoder(t), 0
			for _, line := range bytes.Split(fixed, []byte("\n")) {
				payload, ok := bytes.CutPrefix(line, []byte("data: "))
				if !ok || string(payload) == "[DONE]" {
					continue
				}
				if checkDecode(t, d, bytes.TrimSpace(payload)) {
					fast++
				}
			}
			if fast < tc.fast {
				t.Fatalf("%d lines took the fast path, want at least %d", fast, tc.fast)
			}
		})
	}
}

// fetchStream returns the SSE body fakeai streams for a prompt with marker cfg.
func fetchStream(t *testing.T, url, cfg string, maxTokens int) []byte {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"model": "fake-mini", "stream": true, "max_tokens": maxTokens * 100,
		"stream_options": map[string]bool{"include_usage": true},
		"messages":       []map[string]string{{"role": "user", "content": "go [[fake " + cfg + "]]"}}})
	res, err := http.Post(url+"/chat/completions", "application/json", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, %v", res.StatusCode, err)
	}
	return body
}

// BenchmarkDecodeChunk decodes a stamped fakeai chunk (as the bench's cpu
// scenario streams them) with the fast path and, for scale, as go-openai's
// Recv does.
func BenchmarkDecodeChunk(b *testing.B) {
	line := []byte(chunkCases[0].in)
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		var d chunkDecoder
		for b.Loop() {
			if !d.fast(line) {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		for b.Loop() {
			var r goopenai.ChatCompletionStreamResponse
			if err := json.Unmarshal(line, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
