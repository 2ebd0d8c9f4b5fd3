package docs

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// readREADME is the README's text.
func readREADME(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestREADMENamesInternalPackages: the README's Architecture row for
// internal/ names every package there. It said internal/ held test helpers
// (testcert) long after server packages (gate, lograte, uriredact, ...)
// had joined them.
func TestREADMENamesInternalPackages(t *testing.T) {
	t.Parallel()
	var row string
	for _, line := range strings.Split(readREADME(t), "\n") {
		if strings.HasPrefix(line, "| `internal/` |") {
			row = line
		}
	}
	if row == "" {
		t.Fatal("README.md has no | `internal/` | row")
	}
	entries, err := os.ReadDir("../internal")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !strings.Contains(row, "`"+e.Name()+"`") {
			t.Errorf("README.md's internal/ row does not name internal/%s", e.Name())
		}
	}
}

// TestREADMENamesTestSuites: the README's account of make test names the
// suites of the Makefile's TEST_SUITES, in their order. It left out
// test-embedded, the vet and tests of the binary as shipped.
func TestREADMENamesTestSuites(t *testing.T) {
	t.Parallel()
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TEST_SUITES\s*:?=\s*(.+)$`).FindStringSubmatch(string(mk))
	if m == nil {
		t.Fatal("the Makefile has no TEST_SUITES")
	}
	readme := readREADME(t)
	start := strings.Index(readme, "`make test` runs, in order")
	if start < 0 {
		t.Fatal("README.md no longer says what `make test` runs, in order")
	}
	paragraph, _, _ := strings.Cut(readme[start:], "\n\n")
	at := 0
	for _, suite := range strings.Fields(m[1]) {
		i := strings.Index(paragraph[at:], "`"+suite+"`")
		if i < 0 {
			t.Errorf("README.md's account of make test does not name %s (after the suites before it in TEST_SUITES): %s", suite, m[1])
			continue
		}
		at += i
	}
}
