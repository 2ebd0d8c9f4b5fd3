package openai

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestFlattenParts: a delta content that is a list of parts reaches the
// decoder as a content string, its thinking as reasoning_content, in any
// of the shapes seen (spaces around the colon, thinking as a string or a
// list, plain strings among the parts, parts of other types left out);
// a content string is left alone.
func TestFlattenParts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in          string
		content, thinking string
		rewritten         bool
	}{
		{"magistral thinking", `{"choices":[{"index":0,"delta":{"content":[{"type":"thinking","thinking":[{"type":"text","text":"a <b> greeting"}]}]},"finish_reason":null}]}`,
			"", "a <b> greeting", true},
		{"text parts", `{"choices":[{"index":0,"delta":{"content":[{"type":"text","text":"Hel"},{"type":"text","text":"lo"}]}}]}`,
			"Hello", "", true},
		{"spaces", `{"choices": [{"index": 0, "delta": {"content" : [{"type": "text", "text": "hi"}]}}]}`,
			"hi", "", true},
		{"thinking as a string", `{"choices":[{"delta":{"content":[{"type":"thinking","thinking":"hm"},"and ",{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"so"}]}}]}`,
			"and so", "hm", true},
		{"reasoning_content kept", `{"choices":[{"delta":{"reasoning_content":"r","content":[{"type":"thinking","thinking":"hm"}]}}]}`,
			"", "r", true},
		{"a string", `{"choices":[{"delta":{"content":"[not a list]"}}]}`, "[not a list]", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := "data: " + tc.in + "\n\ndata: [DONE]\n\n"
			out, err := io.ReadAll(newSSEFixer(io.NopCloser(strings.NewReader(body))))
			if err != nil {
				t.Fatal(err)
			}
			line, _, _ := bytes.Cut(out, []byte("\n"))
			if rewritten := string(line) != "data: "+tc.in; rewritten != tc.rewritten {
				t.Fatalf("rewritten %v, want %v: %s", rewritten, tc.rewritten, line)
			}
			var d chunkDecoder
			f, err := d.decode(bytes.TrimPrefix(line, []byte("data: ")))
			if err != nil || len(f.choices) != 1 || f.choices[0].content != tc.content || f.choices[0].reasoning != tc.thinking {
				t.Fatalf("decoded %+v, %v; want content %q reasoning %q", f, err, tc.content, tc.thinking)
			}
		})
	}
}
