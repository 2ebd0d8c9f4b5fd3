package openai

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// heldProbe serves a data line ending in half a surrogate pair, then body,
// then the end of the stream; when body is used up it records the size
// of the fixer's held lines.
type heldProbe struct {
	f     *sseFixer
	r     io.Reader
	lines int // len(f.held) at the end of body
	bytes int // their bytes
}

func (p *heldProbe) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err == io.EOF {
		p.lines = len(p.f.held)
		for _, l := range p.f.held {
			p.bytes += len(l)
		}
	}
	return n, err
}

// TestSSEFixerHeldBounded: the lines after a data line held for its
// surrogate's partner are bounded: blank lines are not held (a slice per
// byte of a stream of newlines), and past maxHeld bytes or maxHeldLines
// lines the held line goes on as it is, long before the body ends (so
// go-openai's limits apply again), first in the output.
func TestSSEFixerHeldBounded(t *testing.T) {
	t.Parallel()
	const first = `data: {"choices":[{"index":0,"delta":{"content":"a\ud83d"}}]}` + "\n"
	tests := []struct{ name, body string }{
		{"blank lines", strings.Repeat("\n", 2<<20)},
		{"blank lines with spaces", strings.Repeat(" \r\n", 1<<20)},
		{"short junk lines", strings.Repeat("x\n", 1<<20)},
		{"long junk lines", strings.Repeat(strings.Repeat("y", 100<<10)+"\n", 20)},
		{"data lines that are not chunks", strings.Repeat("data: z\n\n", 1<<18)},
		{"chunks without content", strings.Repeat(`data: {"choices":[{"index":0,"delta":{"content":""}}]}`+"\n\n", 1<<14)},
		{"long chunks of reasoning", strings.Repeat(`data: {"choices":[{"index":0,"delta":{"reasoning_content":"`+strings.Repeat("r", 20<<10)+`"}}]}`+"\n\n", 20)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := &heldProbe{r: strings.NewReader(first + tc.body)}
			p.f = newSSEFixer(io.NopCloser(p))
			out, err := io.ReadAll(p.f)
			if err != nil {
				t.Fatal(err)
			}
			if p.lines > maxHeldLines+1 || p.bytes > len(first)+maxHeld {
				t.Fatalf("%d lines (%d bytes) held, want at most %d lines, %d bytes", p.lines, p.bytes, maxHeldLines+1, len(first)+maxHeld)
			}
			if p.lines != 0 {
				t.Fatalf("%d lines still held at the end of the body", p.lines)
			}
			if !bytes.HasPrefix(out, []byte(first)) {
				t.Fatalf("output starts %.100q, want the held line", out)
			}
		})
	}
}
