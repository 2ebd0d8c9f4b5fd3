package openai

import (
	"fmt"
	"strings"
	"testing"
)

// TestDecodedTextsKept: the strings one decoder returns keep their value
// while it decodes on, through full blocks of its arena, escaped strings
// (decoded in its scratch buffer) and strings too long for a block, each
// as json.Unmarshal decodes it; a chunk of plain text allocates nothing.
func TestDecodedTextsKept(t *testing.T) { // not parallel: AllocsPerRun
	var d chunkDecoder
	type kept struct {
		payload []byte
		got     chunkFields
	}
	var all []kept
	for i := range 3 * arenaBlock {
		var content string
		switch i % 4 {
		case 0:
			content = fmt.Sprintf("token %d ", i)
		case 1:
			content = fmt.Sprintf(`line\n%d \"quoted\" \u00e9\ud83d\ude42`, i)
		case 2:
			content = fmt.Sprintf("ünïcödé %d", i)
		default:
			content = strings.Repeat(fmt.Sprint(i%10), i%(arenaBlock/2))
		}
		payload := fmt.Appendf(nil, `{"choices":[{"index":0,"delta":{"content":"%s","reasoning_content":"r%d"},"finish_reason":null}]}`, content, i)
		f, err := d.decode(payload)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		got := *f
		got.choices = append([]choiceFields(nil), f.choices...)
		all = append(all, kept{payload, got})
	}
	for i, k := range all {
		want, err := unmarshalChunk(k.payload)
		if err != nil {
			t.Fatal(err)
		}
		if describe(k.got) != describe(want) {
			t.Fatalf("chunk %d now reads\n%s\nwant\n%s", i, describe(k.got), describe(want))
		}
	}
	plain := []byte(chunkCases[0].in)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := d.decode(plain); err != nil {
			t.Fatal(err)
		}
	}); n > 0.1 {
		t.Errorf("%.2f allocations per plain chunk, want none but the arena's blocks", n)
	}
}
