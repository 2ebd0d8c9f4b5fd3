package relay

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/llm/fakeai"
)

// fakeChunk is one of fakeai's content chunks, as the benchmark's upstream
// sends them.
const fakeChunk = `{"id":"chatcmpl-fake1","object":"chat.completion.chunk","created":1700000000,"model":"m","system_fingerprint":"fp_fakeai","choices":[{"index":0,"delta":{"content":"[ts:1234567890123] h\u00e9llo \"w\" "},"logprobs":null,"finish_reason":null}],"x_fake_ts":1234567890123}`

// TestChunkAllocations: the relay's work per chunk (read the text, build
// the delta frame) allocates at most twice, as chatd's reflection-free
// decoder does; decoding with json.Unmarshal and quoting with json.Marshal
// took 13 allocations (480 B), and chatd's allocations were compared with
// the relay's JSON decoder.
func TestChunkAllocations(t *testing.T) {
	var text, frame []byte
	data := []byte(fakeChunk)
	allocs := testing.AllocsPerRun(200, func() {
		var ok bool
		var err error
		text, ok, err = chunkText(text[:0], data)
		if err != nil || !ok {
			t.Fatalf("chunkText: %v %v", ok, err)
		}
		frame = appendDelta(frame[:0], 42, text)
	})
	if allocs > 2 {
		t.Fatalf("%.0f allocations per chunk, want at most 2", allocs)
	}
	var f struct {
		Type string
		Seq  int
		Text string
	}
	if err := json.Unmarshal(frame, &f); err != nil || f.Type != "delta" || f.Seq != 42 || f.Text != `[ts:1234567890123] héllo "w" ` {
		t.Fatalf("frame %s: %+v %v", frame, f, err)
	}
}

// TestChunkText: the text read is what encoding/json reads of
// choices[0].delta.content, whatever precedes it and however it is escaped.
func TestChunkText(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		fakeChunk,
		`{"choices":[{"delta":{"role":"assistant","content":""}}]}`,
		`{"choices":[{"delta":{}}]}`,
		`{"choices":[{"delta":{"content":null}}]}`,
		`{"choices":[],"usage":{"prompt_tokens":3}}`,
		`{"choices":null}`,
		`{"content":"not this","choices":[{"index":0,"logprobs":{"content":[{"t":"}]\""}]},"delta":{"tool_calls":[{"content":"nor this"}],"content":"this"}},{"delta":{"content":"not the second"}}]}`,
		` { "choices" : [ { "delta" : { "content" : "a\\b\/c\n\t\u0001\ud83d\ude42 \ud800 x" } } ] } `,
		`{"choices":[{"delta":{"content":"中文 🙂 <script>&amp;"}}]}`,
	} {
		var want struct {
			Choices []struct {
				Delta struct {
					Content *string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &want); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		wantOK := len(want.Choices) > 0 && want.Choices[0].Delta.Content != nil
		got, ok, err := chunkText(nil, []byte(data))
		if err != nil || ok != wantOK || wantOK && string(got) != *want.Choices[0].Delta.Content {
			t.Errorf("%s: got %q %v %v, want %v", data, got, ok, err, want.Choices)
		}
	}
	for _, data := range []string{`{"choices":[{"delta":{"content":"cut`, `{"choices"`, `{"choices":[{"delta":{"x":}}]}`, `[1]x`,
		`{"id":"x","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3,`, // fakeai's malformed_end
		`{"choices":[{"delta":{"content":"a"}}]}}`, ``} {
		if _, ok, err := chunkText(nil, []byte(data)); ok || err == nil {
			t.Errorf("%s: not an error (ok %v)", data, ok)
		}
	}
}

// TestRelayTextExact: the relay's frames carry the upstream's text byte for
// byte (multi-byte words, quotes, markup, newlines), with seq its length.
func TestRelayTextExact(t *testing.T) {
	t.Parallel()
	for _, mode := range []fakeai.Mode{fakeai.ModeText, fakeai.ModeMarkdown, fakeai.ModeXSS} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			cfg := fakeai.Config{Mode: mode, Tokens: 120}
			fake := fakeai.Start(t, fakeai.Options{Defaults: cfg})
			rel := httptest.NewServer(New(Options{Upstream: fake.URL}))
			t.Cleanup(rel.Close)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(rel.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"send","content":"hi","model":"m"}`)); err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			for {
				_, data, err := c.Read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var f struct {
					Type, Text, Status string
					Seq                int
				}
				if err := json.Unmarshal(data, &f); err != nil {
					t.Fatalf("frame %s: %v", data, err)
				}
				text.WriteString(f.Text)
				if f.Seq != text.Len() {
					t.Fatalf("seq %d after %d bytes", f.Seq, text.Len())
				}
				if f.Type == "done" {
					if f.Status != "complete" {
						t.Fatalf("done %s", data)
					}
					break
				}
			}
			if got, want := fakeai.StripStamps(text.String()), fakeai.ExpectedText(cfg); got != want {
				t.Fatalf("text %q, want %q", got, want)
			}
		})
	}
}
