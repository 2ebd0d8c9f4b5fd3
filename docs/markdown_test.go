// Package docs tests that the documentation is true: the wscat session and
// the reasoning model's session of protocol.md replay against a real
// server, the routes of api.md exist and answer as documented, every
// variable the README and the deployment documents name is read by the
// code, the limits they state in words are the code's constants, and no
// document holds shell prompts, machine paths or empty examples.
// docs/record re-records the sessions.
package docs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// codeBlock is one fenced block of a Markdown file.
type codeBlock struct {
	file    string
	line    int    // of the opening fence, 1-based
	lang    string // the info string ("sh", "json", "" ...)
	section string // the nearest "## " heading above it
	lines   []string
}

// readBlocks returns the fenced code blocks of a Markdown file.
func readBlocks(t *testing.T, path string) []codeBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []codeBlock
	var cur *codeBlock
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur != nil && trimmed == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, line)
		case strings.HasPrefix(trimmed, "```"):
			cur = &codeBlock{file: path, line: i + 1, lang: strings.TrimPrefix(trimmed, "```"), section: section}
		case strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: a code block is never closed", path, cur.line)
	}
	return blocks
}

// docFiles are the README and every document under docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append(files, filepath.Join("..", "README.md"))
}

// TestNoPromptsPathsOrEmptyExamples: examples are copied as they are, so
// they hold no shell prompts, no paths of the machine they were written
// on, and no empty blocks.
func TestNoPromptsPathsOrEmptyExamples(t *testing.T) {
	t.Parallel()
	files := docFiles(t)
	if len(files) < 5 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		for _, b := range readBlocks(t, f) {
			if strings.TrimSpace(strings.Join(b.lines, "")) == "" {
				t.Errorf("%s:%d: empty code block", f, b.line)
			}
			for i, l := range b.lines {
				where := func(what string) { t.Errorf("%s:%d: %s: %s", f, b.line+1+i, what, l) }
				trimmed := strings.TrimLeft(l, "<> ")
				if strings.HasPrefix(trimmed, "$ ") || strings.HasPrefix(trimmed, "# $ ") {
					where("shell prompt")
				}
				for _, bad := range []string{"root@", "/work/", "/tmp/", "/Users/"} {
					if strings.Contains(l, bad) {
						where("machine path or prompt " + bad)
					}
				}
			}
		}
	}
}
