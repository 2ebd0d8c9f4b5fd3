package docs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeployScriptsInstallWithoutDevPackages: every `npm ci` the
// deployment kit's scripts tell an operator to run (deploy/*.sh,
// deploy/*.js) carries --omit=dev, as docs/deploy.md's pm2 section does:
// the kit's dev packages (playwright-core, for its tests) are not for a
// server. pm2-setup.sh said `npm ci --prefix <deploy>`.
func TestDeployScriptsInstallWithoutDevPackages(t *testing.T) {
	t.Parallel()
	var files []string
	for _, pattern := range []string{"../deploy/*.sh", "../deploy/*.js"} {
		more, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, more...)
	}
	seen := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			if !strings.Contains(line, "npm ci") {
				continue
			}
			seen++
			if !strings.Contains(line, "--omit=dev") {
				t.Errorf("%s:%d: npm ci without --omit=dev: %s", file, i+1, strings.TrimSpace(line))
			}
		}
	}
	if seen < 2 { // pm2-setup.sh's and ecosystem.config.js's
		t.Errorf("found %d npm ci in %v, want at least 2", seen, files)
	}
}
