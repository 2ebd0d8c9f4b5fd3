package openai

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"chatd/llm/fakeai"
)

// decodeChunk decodes payload as go-openai does, then forgets the fields
// appendCompact may drop: what is left is what chatd can read.
func decodeChunk(payload []byte) (goopenai.ChatCompletionStreamResponse, string) {
	var r goopenai.ChatCompletionStreamResponse
	err := json.Unmarshal(payload, &r)
	r.ID, r.Object, r.Created, r.Model, r.SystemFingerprint = "", "", 0, "", ""
	for i := range r.Choices {
		r.Choices[i].Delta.Role, r.Choices[i].Logprobs = "", nil
	}
	if err != nil {
		return r, err.Error()
	}
	return r, ""
}

// checkCompact fails unless payload is left alone or compacts to JSON that
// decodes like it; it returns the compact form (nil: left alone).
func checkCompact(t *testing.T, payload []byte) []byte {
	t.Helper()
	out, ok := appendCompact(nil, payload)
	if !ok {
		return nil
	}
	if !json.Valid(out) {
		t.Fatalf("compact form of %s is not JSON: %s", payload, out)
	}
	want, wantErr := decodeChunk(payload)
	got, gotErr := decodeChunk(out)
	if gotErr != wantErr || !reflect.DeepEqual(got, want) {
		t.Fatalf("%s\ncompacts to\n%s\nwhich decodes to %+v (error %q), want %+v (error %q)", payload, out, got, gotErr, want, wantErr)
	}
	if bytes.HasPrefix(out, errorStart) {
		t.Fatalf("%s compacts to an error chunk: %s", payload, out)
	}
	return out
}

// TestCompactFakeStreams compacts every data line of real fakeai streams
// (usage, finish reasons, both reasoning spellings, split surrogates,
// markdown and script payloads, a mid-stream error, a malformed chunk):
// each decodes as before, and the ordinary chunks do shrink.
func TestCompactFakeStreams(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	tests := []struct {
		name   string
		cfg    string // a [[fake ...]] marker
		shrunk int    // at least this many lines compact
	}{
		{"text", "tokens=30", 31},
		{"markdown", "mode=markdown", 20},
		{"xss", "mode=xss", 5},
		{"reasoning_content", "tokens=5 reasoning=6", 11},
		{"reasoning", "tokens=5 reasoning=6 reasoning_key=reasoning", 11},
		{"mixed reasoning", "tokens=5 reasoning=6 reasoning_key=mixed", 11},
		{"surrogates", "tokens=20 surrogates=true", 20},
		{"stamped", "tokens=10 stamp=all", 10},
		{"error mid-stream", "tokens=10 fault=error_mid after=3", 3},
		{"malformed chunk", "tokens=10 fault=malformed after=3", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			shrunk := 0
			for _, line := range bytes.Split(fetchStream(t, srv.URL, tc.cfg, 12), []byte("\n")) {
				payload, ok := bytes.CutPrefix(line, []byte("data: "))
				if !ok || string(payload) == "[DONE]" {
					continue
				}
				if out := checkCompact(t, payload); out != nil && len(out) < len(payload) {
					shrunk++
				}
			}
			if shrunk < tc.shrunk {
				t.Fatalf("%d lines compacted, want at least %d", shrunk, tc.shrunk)
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

// TestCompact pins what is dropped, what is kept and what is left alone.
func TestCompact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     string // "" when the payload is left alone
	}{
		{"openai chunk", `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","service_tier":"default","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"a1b2"}`,
			`{"choices":[{"delta":{"content":"Hi"}}]}`},
		{"finish and usage", `{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`,
			`{"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`},
		{"usage chunk", `{"id":"x","choices":[],"usage":{"prompt_tokens":1}}`, `{"choices":[],"usage":{"prompt_tokens":1}}`},
		{"second choice keeps its index", `{"choices":[{"index":1,"delta":{"content":"b"}},{"index":0,"delta":{"content":"a"}}]}`,
			`{"choices":[{"index":1,"delta":{"content":"b"}},{"delta":{"content":"a"}}]}`},
		{"reasoning and refusal", `{"choices":[{"delta":{"reasoning_content":"r","refusal":"no","content":""}}]}`,
			`{"choices":[{"delta":{"reasoning_content":"r","refusal":"no"}}]}`},
		{"tool calls kept", `{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"t","function":{"name":"f","arguments":"{}"}}],"function_call":null}}]}`,
			`{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"t","function":{"name":"f","arguments":"{}"}}],"function_call":null}}]}`},
		{"azure filters kept", `{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{"content":"x"},"index":0}],"prompt_filter_results":[{"prompt_index":0}]}`,
			`{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{"content":"x"}}],"prompt_filter_results":[{"prompt_index":0}]}`},
		{"whitespace", " { \"id\" : \"x\" ,\r\n\t\"choices\" : [ { \"delta\" : { \"content\" : \"a b\" } } ] } \r\n",
			`{"choices":[{"delta":{"content":"a b"}}]}`},
		{"escapes kept as sent", `{"choices":[{"delta":{"content":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude42<>"}}]}`,
			`{"choices":[{"delta":{"content":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude42<>"}}]}`},
		{"unknown members of any kind dropped", `{"x_fake_ts":-1.5e+3,"a":[1,{"b":[true,false,null]}],"c":{},"choices":[]}`, `{"choices":[]}`},
		{"wrong types kept, so go-openai fails alike", `{"id":5,"created":1.5,"model":["m"],"choices":[{"index":"0","delta":{"role":1,"content":2}}]}`,
			`{"id":5,"created":1.5,"model":["m"],"choices":[{"index":"0","delta":{"role":1,"content":2}}]}`},
		{"created too large for a quick check kept", `{"created":12345678901234567890}`, `{"created":12345678901234567890}`},
		{"choices not an array kept", `{"choices":{"delta":{"content":"x"}}}`, `{"choices":{"delta":{"content":"x"}}}`},
		{"delta not an object kept", `{"choices":[{"delta":"x"},5]}`, `{"choices":[{"delta":"x"},5]}`},
		{"empty object", `{}`, `{}`},
		{"error chunk", `{"error":{"message":"overloaded","type":"server_error"}}`, ""},
		{"error after other members", `{"id":"x","error":{"message":"m"}}`, ""},
		{"duplicate field", `{"choices":[],"choices":[{"delta":{"content":"x"}}]}`, ""},
		{"duplicate index", `{"choices":[{"index":1,"index":0}]}`, ""},
		{"field name in another case", `{"Choices":[{"delta":{"content":"x"}}]}`, ""},
		{"field name in another case inside a choice", `{"choices":[{"Index":1,"index":0}]}`, ""},
		{"escaped name", `{"choices":[{"delta":{"\u0063ontent":"x"}}]}`, ""},
		{"non-ASCII name", `{"choices":[{"ﬁnish_reason":"x"}]}`, ""},
		{"not an object", `[1]`, ""},
		{"trailing garbage", `{"choices":[]}x`, ""},
		{"two objects", `{}{}`, ""},
		{"unterminated", `{"choices":[{"delta":{"content":"x`, ""},
		{"bad escape", `{"choices":[],"id":"\x"}`, ""},
		{"short unicode escape", `{"id":"\u12"}`, ""},
		{"control character in a string", "{\"id\":\"a\tb\"}", ""},
		{"leading zero", `{"created":01}`, ""},
		{"bare minus", `{"created":-}`, ""},
		{"fraction without digits", `{"created":1.}`, ""},
		{"exponent without digits", `{"created":1e}`, ""},
		{"bad literal", `{"usage":nul}`, ""},
		{"trailing comma", `{"choices":[],}`, ""},
		{"missing colon", `{"choices"[]}`, ""},
		{"form feed is not JSON space", "\f{}", ""},
		{"too deep", `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := checkCompact(t, []byte(tc.in))
			if string(got) != tc.want {
				t.Fatalf("appendCompact(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzCompact checks that whatever appendCompact rewrites decodes like the
// original: the same values of what chatd reads, the same error.
func FuzzCompact(f *testing.F) {
	for _, s := range []string{
		`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"x"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		`{"choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":3}}`,
		`{"choices":[{"delta":{"reasoning_content":"\ud83e","tool_calls":[{"index":0}]}}],"Usage":null}`,
		`{"error":{"message":"x"}}`, `{"choices":[{"index":0,"index":1}]}`, `{"created":1e3,"id":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if out := checkCompact(t, payload); out != nil && !json.Valid(payload) {
			t.Fatalf("invalid %q compacted to %s", payload, out)
		}
	})
}

// TestCompactKeepsDst checks that appendCompact appends and, when it leaves
// a payload alone, returns dst as it was.
func TestCompactKeepsDst(t *testing.T) {
	t.Parallel()
	dst := []byte("data:")
	out, ok := appendCompact(dst, []byte(`{"id":"x","choices":[]}`))
	if !ok || string(out) != `data:{"choices":[]}` {
		t.Fatalf("got %q, %v", out, ok)
	}
	out, ok = appendCompact(dst, []byte(`{"choices":[]`))
	if ok || string(out) != "data:" {
		t.Fatalf("got %q, %v", out, ok)
	}
}

// BenchmarkCompact compacts a stamped fakeai chunk (as the bench's cpu
// scenario streams them) and, for scale, decodes it as go-openai does.
func BenchmarkCompact(b *testing.B) {
	line := []byte(`{"id":"chatcmpl-fake123","object":"chat.completion.chunk","created":1764750000,"model":"fake-mini","system_fingerprint":"fp_fakeai","choices":[{"index":0,"delta":{"content":"[ts:1234567890123456] lorem "},"logprobs":null,"finish_reason":null}],"usage":null,"x_fake_ts":1234567890123456}`)
	b.Run("compact", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		var out []byte
		for b.Loop() {
			out, _ = appendCompact(out[:0], line)
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		for b.Loop() {
			var r goopenai.ChatCompletionStreamResponse
			_ = json.Unmarshal(line, &r)
		}
	})
	compact, _ := appendCompact(nil, line)
	b.Run("unmarshal compacted", func(b *testing.B) {
		b.SetBytes(int64(len(compact)))
		b.ReportAllocs()
		for b.Loop() {
			var r goopenai.ChatCompletionStreamResponse
			_ = json.Unmarshal(compact, &r)
		}
	})
}

// TestNextSpecial compares the eight-bytes-at-a-time scan with a plain
// loop for every special byte at every position, behind every kind of
// ordinary byte.
func TestNextSpecial(t *testing.T) {
	t.Parallel()
	naive := func(in []byte, i int) int {
		for i < len(in) && in[i] >= 0x20 && in[i] != '"' && in[i] != '\\' {
			i++
		}
		return i
	}
	fills := []byte{' ', '!', '#', '[', ']', 'a', 0x7f, 0x80, 0x9f, 0xa0, 0xdf, 0xe0, 0xff}
	specials := []byte{'"', '\\', 0x00, 0x01, 0x0a, 0x1f}
	for _, fill := range fills {
		for n := 0; n <= 20; n++ {
			for at := -1; at < n; at++ {
				for _, sp := range specials {
					in := bytes.Repeat([]byte{fill}, n)
					if at >= 0 {
						in[at] = sp
					}
					for from := 0; from <= n; from++ {
						if got, want := nextSpecial(in, from), naive(in, from); got != want {
							t.Fatalf("nextSpecial(%q, %d) = %d, want %d", in, from, got, want)
						}
					}
				}
			}
		}
	}
}
