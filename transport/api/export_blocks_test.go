package api

import (
	"bufio"
	"strings"
	"testing"
)

// TestMarkdownBodyMarkersAcrossPieces: the text of a message reaches the
// Markdown export in pieces, and a marker that ends an HTML block counts
// also when a piece ends inside it, so no second end is added (nor one
// left out when the split marker is not the end).
func TestMarkdownBodyMarkersAcrossPieces(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		pieces  []string
		closing string
	}{
		{"a comment ended across pieces", []string{"<!-- x -", "-> y"}, ""},
		{"a script ended across pieces", []string{"<script>\nx </scr", "ipt> y"}, ""},
		{"a comment not ended", []string{"<!-- x -", "- y"}, "-->\n"},
		{"a fence's line in pieces", []string{"  `", "``go\nx"}, "```\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			w := bufio.NewWriter(&out)
			b := &mdBody{w: w}
			for _, p := range tc.pieces {
				if err := b.write(p); err != nil {
					t.Fatal(err)
				}
			}
			b.end()
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if want := strings.Join(tc.pieces, "") + "\n" + tc.closing + "\n"; out.String() != want {
				t.Fatalf("body %q, want %q", out.String(), want)
			}
		})
	}
}
