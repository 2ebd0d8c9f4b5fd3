package openai

import (
	"bytes"
	"testing"
)

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
