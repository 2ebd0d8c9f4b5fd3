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
	tests := []struct{ name, in, want string }{
		{"plain lines pass", head + `"content":"hi"` + tail + "data: [DONE]\n\n",
			head + `"content":"hi"` + tail + "data: [DONE]\n\n"},
		{"split pair joined", head + `"content":"a\ud83d"` + tail + head + `"content":"\ude42b"` + tail,
			head + `"content":"a\ud83d\ude42"` + tail + head + `"content":"b"` + tail},
		{"split pair in reasoning, upper case", head + `"reasoning_content":"x\uD83E"` + tail + head + `"reasoning_content":"\uDD14"` + tail,
			head + `"reasoning_content":"x\uD83E\uDD14"` + tail + head + `"reasoning_content":""` + tail},
		{"lone high before a plain chunk stays", head + `"content":"a\ud83d"` + tail + head + `"content":"b"` + tail,
			head + `"content":"a\ud83d"` + tail + head + `"content":"b"` + tail},
		{"lone high at the end is released", head + `"content":"a\ud83d"` + tail + "data: [DONE]\n\n",
			head + `"content":"a\ud83d"` + tail + "data: [DONE]\n\n"},
		{"escaped backslash is not an escape", head + `"content":"a\\ud83d"` + tail + head + `"content":"\ude42"` + tail,
			head + `"content":"a\\ud83d"` + tail + head + `"content":"\ude42"` + tail},
		{"reasoning renamed", head + `"reasoning":"think"` + tail, head + `"reasoning_content":"think"` + tail},
		{"reasoning kept beside reasoning_content", head + `"reasoning":"a","reasoning_content":"a"` + tail,
			head + `"reasoning":"a","reasoning_content":"a"` + tail},
		{"reasoning object untouched", head + `"reasoning":{"x":1}` + tail, head + `"reasoning":{"x":1}` + tail},
		{"reasoning inside text untouched", head + `"content":"say \"reasoning\": no"` + tail,
			head + `"content":"say \"reasoning\": no"` + tail},
		{"unterminated last line", head + `"content":"x"}}]}`, head + `"content":"x"}}]}`},
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
