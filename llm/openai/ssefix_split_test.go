package openai

import (
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// pieces hands out s in reads of 1 to 7 bytes, chosen by r.
type pieces struct {
	s string
	r *rand.Rand
}

func (p *pieces) Read(b []byte) (int, error) {
	if p.s == "" {
		return 0, io.EOF
	}
	n := min(1+p.r.IntN(7), len(p.s), len(b))
	copy(b, p.s[:n])
	p.s = p.s[n:]
	return n, nil
}

// TestSSEFixerSplitAnywhere: the SSE specification's shapes (a byte order
// mark, bare CR and CR LF line ends, an event's data lines joined, an
// error event, a surrogate pair held across them) come out the same
// however the body's reads cut them (a CR LF cut in two may come out as
// LF), for 300 seeded ways of cutting each.
func TestSSEFixerSplitAnywhere(t *testing.T) {
	t.Parallel()
	head := `data: {"choices":[{"index":0,"delta":{`
	bodies := []string{
		"\ufeff" + head + `"content":"a"}}]}` + "\r\r" + "event: error\rdata: {\"message\":\r" + "data: \"m\"}\r\r",
		"\ufeff" + "data: {\"choices\":[{\"index\":0,\r\ndata: \"delta\":{\"reasoning\":\"x\\ud83d\"}}]}\r\n\r\n" +
			head + `"reasoning":"\ude42"}}]}` + "\r\n\r\n: ping\r\n\r\ndata: [DONE]\r\n\r\n",
		head + `"content":"a"}}]}` + "\n" + head + `"content":"b"}}]}` + "\r" + "data: {\n" + "data: \"x\":1}\n\ndata: [DONE]",
	}
	lf := func(b []byte) string { return strings.ReplaceAll(string(b), "\r\n", "\n") }
	for i, body := range bodies {
		whole, err := io.ReadAll(newSSEFixer(io.NopCloser(strings.NewReader(body))))
		if err != nil {
			t.Fatal(err)
		}
		for seed := range 300 {
			r := &pieces{s: body, r: rand.New(rand.NewPCG(uint64(seed), uint64(i)))}
			got, err := io.ReadAll(newSSEFixer(io.NopCloser(r)))
			if err != nil || lf(got) != lf(whole) {
				t.Fatalf("body %d, seed %d: %q, %v; read whole: %q", i, seed, got, err, whole)
			}
		}
	}
}
