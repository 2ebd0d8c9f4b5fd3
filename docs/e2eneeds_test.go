package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// needRe finds the deployment tests' need(t, "tool", "apt-get ... install -y
// PACKAGES") calls, capturing the tool and the packages.
var needRe = regexp.MustCompile(`need\(t, "([^"]+)", "[^"]*apt-get install -y ([^"]+)"\)`)

// TestE2EInstallLineCoversNeeds: the install line of deploy.md's "Testing
// this setup" installs every apt package the deployment tests ask for
// (need), so whoever follows it does not meet "curl is required by the
// deployment test" or "systemd-analyze is required" halfway through.
func TestE2EInstallLineCoversNeeds(t *testing.T) {
	t.Parallel()
	var line string
	for _, b := range readBlocks(t, "deploy.md") {
		if b.section != "Testing this setup" {
			continue
		}
		for _, l := range b.lines {
			if strings.Contains(l, "apt-get install") {
				line = l
			}
		}
	}
	if line == "" {
		t.Fatal(`deploy.md: no apt-get install line in "Testing this setup"`)
	}
	_, after, _ := strings.Cut(line, "apt-get install -y ")
	cmd, _, _ := strings.Cut(after, "#")
	installed := map[string]bool{}
	for _, p := range strings.Fields(cmd) {
		installed[p] = true
	}
	files, err := filepath.Glob(filepath.Join("..", "deploy", "e2e", "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range needRe.FindAllStringSubmatch(string(src), -1) {
			calls++
			for _, p := range strings.Fields(m[2]) {
				if !installed[p] {
					t.Errorf("%s needs %s (apt package %s), which deploy.md's install line lacks: %s", filepath.Base(f), m[1], p, line)
				}
			}
		}
	}
	if calls < 5 {
		t.Fatalf("found %d need() calls in deploy/e2e: the pattern no longer matches them", calls)
	}
}
