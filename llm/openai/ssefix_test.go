package openai

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestSSEFixer pins the line rewrites, reading the body one byte at a time
// so that every line arrives in pieces.
func TestSSEFixer(t *testing.T) {
	t.Parallel()
	const head = `data: {"choices":[{"index":0,"delta":{`
	const tail = "}}]}\n\n"
	// out is the data line go-openai reads. The blank line ending a data
	// line's event is held back until a line other than a data line (or
	// the end) follows.
	out := func(delta string) string { return head + delta + "}}]}\n" }
	const errLine = `data: {"error":{"message":"overloaded"}}` + "\n\n"
	const finish = `data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	tests := []struct{ name, in, want string }{
		{"plain lines", head + `"content":"hi"` + tail + "data: [DONE]\n\n",
			out(`"content":"hi"`) + "data: [DONE]\n\n"},
		{"split pair joined", head + `"content":"a\ud83d"` + tail + head + `"content":"\ude42b"` + tail,
			out(`"content":"a\ud83d\ude42"`) + out(`"content":"b"`) + "\n"},
		{"split pair in reasoning, upper case", head + `"reasoning_content":"x\uD83E"` + tail + head + `"reasoning_content":"\uDD14"` + tail,
			out(`"reasoning_content":"x\uD83E\uDD14"`) + out(`"reasoning_content":""`) + "\n"},
		// Chunks without text in the field between the halves are held
		// after the first; the pair is joined all the same.
		{"split pair across an empty content", head + `"content":"a\ud83d"` + tail + head + `"content":""` + tail + head + `"content":"\ude00b"` + tail,
			out(`"content":"a\ud83d\ude00"`) + out(`"content":""`) + out(`"content":"b"`) + "\n"},
		{"split pair across an empty delta", head + `"content":"a\ud83d"` + tail + head + tail + head + `"content":"\ude00b"` + tail,
			out(`"content":"a\ud83d\ude00"`) + out(``) + out(`"content":"b"`) + "\n"},
		{"split pair across reasoning alone", head + `"content":"a\ud83d"` + tail + head + `"reasoning":"hm"` + tail + head + `"content":""` + tail + head + `"content":"\ude00b"` + tail,
			out(`"content":"a\ud83d\ude00"`) + out(`"reasoning_content":"hm"`) + out(`"content":""`) + out(`"content":"b"`) + "\n"},
		{"split reasoning pair across content alone", head + `"reasoning_content":"a\ud83d"` + tail + head + `"content":"x"` + tail + head + `"reasoning_content":"\ude00"` + tail,
			out(`"reasoning_content":"a\ud83d\ude00"`) + out(`"content":"x"`) + out(`"reasoning_content":""`) + "\n"},
		// A finish reason or an error is not held: the half stays lone.
		{"a finish reason between the halves", head + `"content":"a\ud83d"` + tail + finish + "\n\n" + head + `"content":"\ude00b"` + tail,
			out(`"content":"a\ud83d"`) + finish + "\n" + out(`"content":"\ude00b"`) + "\n"},
		{"an error between the halves", head + `"content":"a\ud83d"` + tail + errLine,
			out(`"content":"a\ud83d"`) + errLine},
		{"lone high before a plain chunk stays", head + `"content":"a\ud83d"` + tail + head + `"content":"b"` + tail,
			out(`"content":"a\ud83d"`) + out(`"content":"b"`) + "\n"},
		{"lone high at the end is released", head + `"content":"a\ud83d"` + tail + "data: [DONE]\n\n",
			out(`"content":"a\ud83d"`) + "data: [DONE]\n\n"},
		{"escaped backslash is not an escape", head + `"content":"a\\ud83d"` + tail + head + `"content":"\ude42"` + tail,
			out(`"content":"a\\ud83d"`) + out(`"content":"\ude42"`) + "\n"},
		{"reasoning renamed", head + `"reasoning":"think"` + tail, out(`"reasoning_content":"think"`) + "\n"},
		{"reasoning kept beside reasoning_content", head + `"reasoning":"a","reasoning_content":"b"` + tail,
			out(`"reasoning":"a","reasoning_content":"b"`) + "\n"},
		// One spelling empty, the other not: the text wins, in either order.
		{"empty reasoning_content after reasoning", head + `"reasoning":"x\u00e9","reasoning_content":""` + tail,
			out(`"reasoning":"x\u00e9","reasoning_content":"x\u00e9"`) + "\n"},
		{"empty reasoning_content before reasoning", head + `"reasoning_content":"","reasoning":"x"` + tail,
			out(`"reasoning_content":"x","reasoning":"x"`) + "\n"},
		{"empty reasoning beside reasoning_content", head + `"reasoning":"","reasoning_content":"y"` + tail,
			out(`"reasoning":"","reasoning_content":"y"`) + "\n"},
		{"both empty", head + `"reasoning":"","reasoning_content":""` + tail,
			out(`"reasoning":"","reasoning_content":""`) + "\n"},
		{"null reasoning_content, reasoning renamed", head + `"reasoning_content":null,"reasoning":"x"` + tail,
			out(`"reasoning_content":null,"reasoning_content":"x"`) + "\n"},
		{"reasoning object not renamed", head + `"reasoning":{"x":1}` + tail, out(`"reasoning":{"x":1}`) + "\n"},
		{"reasoning inside text untouched", head + `"content":"say \"reasoning\": no"` + tail,
			out(`"content":"say \"reasoning\": no"`) + "\n"},
		// The body's last line is ended unless it is a cut data line.
		{"unterminated last line", head + `"content":"x"}}]}`, head + `"content":"x"}}]}` + "\n"},
		{"unterminated [DONE]", head + `"content":"x"` + tail + "data: [DONE]", out(`"content":"x"`) + "data: [DONE]\n"},
		{"unterminated error body", `{"error":{"message":"m"}}`, `{"error":{"message":"m"}}` + "\n"},
		{"cut data line stays cut", head + `"content":"x"` + tail + "data: {", out(`"content":"x"`) + "\ndata: {"},
		{"llama.cpp error field", head + `"content":"x"` + tail + `error: {"code":500,"message":"m","type":"server_error"}` + "\n\ndata: [DONE]\n\n",
			out(`"content":"x"`) + "\n" + `data: {"error":{"code":500,"message":"m","type":"server_error"}}` + "\n\ndata: [DONE]\n\n"},
		{"error field not an object", "error: oops\ndata: [DONE]\n", "error: oops\ndata: [DONE]\n"},
		{"string error becomes an object", `data:{"error":"too \"long\"","error_type":"validation"}` + "\n\n",
			`data: {"error":{"message":"too \"long\"","type":"validation"}}` + "\n\n"},
		{"top-level error object wrapped", `data: {"object":"error","message":"m","code":503}` + "\n\n",
			`data: {"error":{"object":"error","message":"m","code":503}}` + "\n\n"},
		{"finish reason error untouched", `data: {"choices":[{"index":0,"delta":{},"finish_reason":"error"}],"error":{"code":502,"message":"m"}}` + "\n",
			`data: {"choices":[{"index":0,"delta":{},"finish_reason":"error"}],"error":{"code":502,"message":"m"}}` + "\n"},
		{"an error line ends its event at once", `data: {"error":{"message":"m"}}` + "\n", `data: {"error":{"message":"m"}}` + "\n\n"},
		{"event, id and retry fields dropped", "event: x\nid: 1\nretry: 5\ndata: [DONE]\n", "data: [DONE]\n"},
		{"fields before an error dropped", "event: message\n" + head + `"content":"x"` + tail + "event: message\nid: 2\n" + errLine,
			out(`"content":"x"`) + "\n" + errLine},
		{"other lines pass", "x: 1\n<p>\n  \"id\": 1\n", "x: 1\n<p>\n  \"id\": 1\n"},
		{"comments dropped with their blank line", ": keep-alive\n\n:ping\r\n\r\n: x\nevent: x\ndata: [DONE]\n", "data: [DONE]\n"},
		{"comments dropped between events", head + `"content":"x"` + tail + ": ping\n\n: ping\n\n" + head + `"content":"y"` + tail,
			out(`"content":"x"`) + out(`"content":"y"`) + "\n"},
		{"comment before an error, which stays", ": ping\n\n" + errLine, errLine},
		{"comment while a surrogate is held", head + `"content":"a\ud83d"` + tail + ": ping\n\n" + head + `"content":"\ude42b"` + tail,
			out(`"content":"a\ud83d\ude42"`) + out(`"content":"b"`) + "\n"},
		{"unterminated last comment", head + `"content":"x"` + tail + ": ping", out(`"content":"x"`) + "\n"},
		{"blank kept before an error, which stays", head + `"content":"x"` + tail + errLine,
			out(`"content":"x"`) + "\n" + errLine},
		// Read a byte at a time, every CR is the last byte of a read: it
		// becomes LF at once and the LF after it is dropped.
		{"CRLF lines", "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\r\n\r\ndata: [DONE]\r\n\r\n",
			"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n" + "data: [DONE]\n\n"},
		// The shapes of the SSE specification (see TestStreamFramings).
		{"bare CR lines", head + `"content":"x"}}]}` + "\r\r" + ": ping\r\r" + "data: [DONE]\r\r",
			out(`"content":"x"`) + "data: [DONE]\n\n"},
		{"byte order mark", "\ufeff" + head + `"content":"x"` + tail, out(`"content":"x"`) + "\n"},
		{"byte order mark before a comment", "\ufeff: ping\n\n" + head + `"content":"x"` + tail, out(`"content":"x"`) + "\n"},
		{"only the first byte order mark", "\ufeff\ufeff" + head + `"content":"x"` + tail, "\ufeff" + out(`"content":"x"`) + "\n"},
		{"byte order mark alone", "\ufeff", ""},
		{"multiline data joined", "event: message\ndata: {\"choices\":[{\"index\":0,\ndata: \"delta\":{\"content\":\"x\"}}]}\n\n" +
			head + `"content":"y"` + tail, "data: {\"choices\":[{\"index\":0,\r\"delta\":{\"content\":\"x\"}}]}\n" + out(`"content":"y"`) + "\n"},
		{"multiline data, pretty-printed", "data: {\ndata:   \"choices\": []\ndata: }\n\ndata: [DONE]\n\n",
			"data: {\r  \"choices\": []\r}\n" + "data: [DONE]\n\n"},
		{"multiline data ended by the body", "data: {\"a\":\ndata: 1}", "data: {\"a\":\r1}\n"},
		{"multiline data cut by the body", "data: {\"a\":\ndata: [1,", "data: {\"a\":\r[1,"},
		{"multiline reasoning renamed", "data: {\"choices\":[{\"delta\":{\"reasoning\":\ndata: \"r\"}}]}\n\n",
			"data: {\"choices\":[{\"delta\":{\"reasoning_content\":\r\"r\"}}]}\n\n"},
		{"whole data lines without blank lines pass at once", head + `"content":"x"}}]}` + "\n" + head + `"content":"y"}}]}` + "\n",
			out(`"content":"x"`) + out(`"content":"y"`)},
		{"error event, object", "event: error\ndata: {\"message\":\"m\",\"type\":\"server_error\"}\n\ndata: [DONE]\n\n",
			`data: {"error":{"message":"m","type":"server_error"}}` + "\n\ndata: [DONE]\n\n"},
		{"error event, text", "event:error\r\ndata: overloaded\r\n\r\n", `data: {"error":{"message":"overloaded"}}` + "\n\n"},
		{"error event with an error member", "event: error\n" + errLine, errLine},
		{"error event, multiline", "event: error\ndata: {\"message\":\ndata: \"m\"}\n\n",
			`data: {"error":{"message":` + "\r" + `"m"}}` + "\n\n"},
		{"error type ends with its event", "event: error\n\n" + head + `"content":"x"` + tail, out(`"content":"x"`) + "\n"},
		{"an event of fields only dropped with its blank line", "retry: 10\n\nid: 1\nevent: ping\n\n" + head + `"content":"x"` + tail,
			out(`"content":"x"`) + "\n"},
		{"empty data dropped with its blank line", head + `"content":"x"` + tail + "data:\n\ndata: \r\n\r\n" + "data: [DONE]\n\n",
			out(`"content":"x"`) + "data: [DONE]\n\n"},
		{"empty data of an error event kept", "event: error\ndata:\n\n", `data: {"error":{"message":"the stream reported an error without a message"}}` + "\n\n"},
		{"other event types", "event: errors\n" + head + `"content":"x"` + tail, out(`"content":"x"`) + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newSSEFixer(io.NopCloser(iotest.OneByteReader(strings.NewReader(tc.in))))
			got, err := io.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// BenchmarkSSEFixer measures the fixer on a stream of ordinary chunks read
// as go-openai reads them (bufio, 4 KiB), against the bare body.
func BenchmarkSSEFixer(b *testing.B) {
	var sb strings.Builder
	for i := range 200 {
		fmt.Fprintf(&sb, `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"tök%d "},"finish_reason":null}]}`+"\n\n", i)
	}
	stream := sb.String()
	for _, fix := range []bool{false, true} {
		b.Run(fmt.Sprintf("fix=%v", fix), func(b *testing.B) {
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			for b.Loop() {
				var body io.ReadCloser = io.NopCloser(&chunked{s: stream})
				if fix {
					body = newSSEFixer(body)
				}
				r := bufio.NewReaderSize(body, 4096)
				for {
					if _, err := r.ReadBytes('\n'); err != nil {
						break
					}
				}
			}
		})
	}
}

// chunked returns one SSE event per Read, as a server flushing each chunk does.
type chunked struct{ s string }

func (c *chunked) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	i := strings.Index(c.s, "\n\n") + 2
	n := copy(p, c.s[:i])
	c.s = c.s[n:]
	return n, nil
}
