package openai_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"chatd/llm"
)

// TestInStreamErrorKinds: an OpenAI-style error event inside a 200 stream
// (`data: {"error":{...}}`) is classified by its code and wording, like the
// same error with an HTTP status: a prompt refused as too long is
// context_length (docs/protocol.md), not upstream_error.
func TestInStreamErrorKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string // the error event's JSON
		kind llm.ErrorKind
	}{
		{"context length by code",
			`{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			llm.KindContextLength},
		{"context length by wording",
			`{"error":{"message":"prompt exceeds the context window of this model","type":"BadRequestError"}}`,
			llm.KindContextLength},
		{"server error", `{"error":{"message":"The server had an error.","type":"server_error"}}`, llm.KindUpstream},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprint(w, "data: "+tc.body+"\n\n")
			}))
			defer srv.Close()
			r := stream(testCtx(t), newClient(srv.URL, nil), "hi", 0)
			if llm.KindOf(r.err) != tc.kind {
				t.Fatalf("kind %q (err %v), want %q", llm.KindOf(r.err), r.err, tc.kind)
			}
		})
	}
}
