package openai

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// junkStream is an answer of n text chunks, each after a junk line of
// size bytes (neither a data line, a field nor a comment), then [DONE].
func junkStream(n, size int) (body, text string) {
	junk := strings.Repeat("x", size) + "\n"
	var b, t strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s"+`data: {"choices":[{"index":0,"delta":{"content":"t%d "}}]}`+"\n\n", junk, i)
		fmt.Fprintf(&t, "t%d ", i)
	}
	b.WriteString("data: [DONE]\n\n")
	return b.String(), t.String()
}

// TestSSEFixerBoundsJunk: junk lines between the chunks of an answer are
// passed to go-openai, which keeps every line other than a data line for
// the whole stream, only up to maxErrorText bytes in all; past that they
// become blank lines. Every chunk still passes.
func TestSSEFixerBoundsJunk(t *testing.T) {
	t.Parallel()
	body, _ := junkStream(64, 1<<20)
	out, err := io.ReadAll(newSSEFixer(io.NopCloser(strings.NewReader(body))))
	if err != nil {
		t.Fatal(err)
	}
	kept, data := 0, 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 2<<20)
	for sc.Scan() {
		switch l := bytes.TrimSpace(sc.Bytes()); {
		case bytes.HasPrefix(l, dataPrefix):
			data++
		default:
			kept += len(l) // what go-openai keeps
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if kept > maxErrorText {
		t.Fatalf("%d bytes of junk passed on, want at most %d", kept, maxErrorText)
	}
	if data != 65 {
		t.Fatalf("%d data lines passed on, want 65", data)
	}
}
