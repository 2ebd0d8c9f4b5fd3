package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// sectionRef is a reference to a part of a document, as the repository
// spells them: `deploy.md, "Rotating the JWT secret"` (or
// `[deploy.md](deploy.md), "..."`), possibly broken over comment lines.
var sectionRef = regexp.MustCompile(`\b(README|api|benchmarks|deploy|protocol|scale)\.md\)?,? "([^"]+)"`)

// continuation joins a line broken inside a comment or a paragraph: the
// line break with the comment marker and indentation of the next line.
var continuation = regexp.MustCompile(`\s*\n\s*(?:// ?|# ?)?\s*`)

// TestSectionReferencesExist: every `<doc>.md, "<part>"` in the
// documents, the deployment kit and the code names a heading of that
// document, or a bold paragraph title in it, so an operator sent there
// finds it (a unit file sent readers to deploy.md's "Option A: systemd",
// a section since renamed "4a. Run with systemd").
func TestSectionReferencesExist(t *testing.T) {
	t.Parallel()
	parts := map[string]string{} // document -> its headings and bold titles, one a line
	for _, doc := range []string{"../README.md", "api.md", "benchmarks.md", "deploy.md", "protocol.md", "scale.md"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "#") {
				b.WriteString(strings.TrimLeft(line, "# ") + "\n")
			}
		}
		for _, m := range regexp.MustCompile(`\*\*([^*]+)\*\*`).FindAllStringSubmatch(continuation.ReplaceAllString(string(data), " "), -1) {
			b.WriteString(m[1] + "\n")
		}
		parts[strings.TrimSuffix(filepath.Base(doc), ".md")] = strings.ToLower(b.String())
	}
	var files []string
	for _, pattern := range []string{"../README.md", "*.md", "../deploy/*", "../nginx.conf", "../Makefile",
		"../scripts/*", "../cmd/*/*.go", "../cmd/*/*/*.go", "../bench/*.go", "../frontend/src/*/*.ts"} {
		found, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, found...)
	}
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // a directory
		}
		text := continuation.ReplaceAllString(string(data), " ")
		for _, m := range sectionRef.FindAllStringSubmatch(text, -1) {
			checked++
			if !strings.Contains(parts[m[1]], strings.ToLower(m[2])) {
				t.Errorf("%s refers to %s.md, %q: no heading or bold title of %s.md holds it", f, m[1], m[2], m[1])
			}
		}
	}
	if checked < 10 {
		t.Fatalf("found only %d section references: has their spelling changed?", checked)
	}
}

// mdLink is a Markdown link with a fragment: [text](file.md#anchor) or
// [text](#anchor).
var mdLink = regexp.MustCompile(`\]\(([^)#\s]*)#([^)\s]+)\)`)

// TestAnchorsExist: every link to a heading of a document (its #anchor,
// as GitHub makes it from the heading) lands on a heading.
func TestAnchorsExist(t *testing.T) {
	t.Parallel()
	docs := append([]string{"../README.md"}, mustGlob(t, "*.md")...)
	anchors := map[string]map[string]bool{}
	for _, doc := range docs {
		anchors[filepath.Clean(doc)] = headingAnchors(t, doc)
	}
	for _, doc := range docs {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatchIndex(string(data), -1) {
			file, anchor := string(data[m[2]:m[3]]), string(data[m[4]:m[5]])
			target := filepath.Clean(doc)
			if file != "" {
				target = filepath.Clean(filepath.Join(filepath.Dir(doc), file))
			}
			known, ok := anchors[target]
			if !ok {
				continue // not a document (a source file's #L line)
			}
			if !known[anchor] {
				line := strings.Count(string(data[:m[0]]), "\n") + 1
				t.Errorf("%s:%d: link to %s#%s: no such heading", doc, line, target, anchor)
			}
		}
	}
}

// headingAnchors are the anchors of a document's headings (outside code
// blocks): lower case, punctuation but hyphens dropped, spaces made
// hyphens.
func headingAnchors(t *testing.T, doc string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	drop := regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)
	anchors := map[string]bool{}
	fenced := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
		}
		if !fenced && strings.HasPrefix(line, "#") {
			h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
			anchors[strings.ReplaceAll(drop.ReplaceAllString(h, ""), " ", "-")] = true
		}
	}
	return anchors
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return files
}
