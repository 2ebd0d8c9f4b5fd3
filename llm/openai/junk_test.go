package openai_test

import (
	"fmt"
	"strings"
	"testing"

	"chatd/llm"
	"chatd/llm/openai"
)

// TestJunkBetweenChunks: an upstream answering 200 with a 1 MiB junk line
// before each of its chunks still gives the whole answer (the SSE fixer
// keeps go-openai from holding the junk, TestSSEFixerBoundsJunk), and an
// error body sent without "data:" after the text (pretty-printed, over
// several lines) is still reported with its message.
func TestJunkBetweenChunks(t *testing.T) {
	t.Parallel()
	var body, want strings.Builder
	junk := strings.Repeat("<junk/>", 1<<20/7) + "\n"
	for i := range 64 {
		body.WriteString(junk + contentChunk(fmt.Sprintf("t%d ", i)))
		fmt.Fprintf(&want, "t%d ", i)
	}
	const errBody = "{\n  \"error\": {\n    \"message\": \"Overloaded\",\n    \"type\": \"server_error\"\n  }\n}\n"
	tests := []struct {
		name, body, text string
		kind             llm.ErrorKind // "": success
		message          string
	}{
		{"junk between chunks", body.String() + "data: [DONE]\n\n", want.String(), "", ""},
		{"error body after text", contentChunk("hi") + errBody, "hi", llm.KindUpstream, "Overloaded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := sseServer(t, tc.body)
			r := stream(testCtx(t), newClient(srv.URL, func(o *openai.Options) { o.MaxRetries = -1 }), "hi", 0)
			if llm.KindOf(r.err) != tc.kind || (tc.kind == "" && r.err != nil) {
				t.Fatalf("err %v, want kind %q", r.err, tc.kind)
			}
			if tc.message != "" && !strings.Contains(r.err.Error(), tc.message) {
				t.Fatalf("err %v, want the upstream's message %q", r.err, tc.message)
			}
			if r.text() != tc.text {
				t.Fatalf("text %.80q, want %.80q", r.text(), tc.text)
			}
		})
	}
}
