package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// envNameRE matches the environment variable names chatd reads.
var envNameRE = regexp.MustCompile(`"((?:CHATD|OPENAI|MONGODB|JWT)_[A-Z0-9_]+)"`)

// TestEnvExampleDocumentsEverySetting checks that deploy/chatd.env.example
// mentions every environment variable the server's code names, so the file
// operators copy does not fall behind the server.
func TestEnvExampleDocumentsEverySetting(t *testing.T) {
	root := repoRoot(t)
	example, err := os.ReadFile(filepath.Join(root, "deploy", "chatd.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#?([A-Z][A-Z0-9_]+)=`).FindAllStringSubmatch(string(example), -1) {
		documented[m[1]] = true
	}
	var files []string
	err = filepath.WalkDir(filepath.Join(root, "cmd", "chatd"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".go") {
			files = append(files, path)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no cmd/chatd sources: %v", err)
	}
	var missing []string
	seen := map[string]bool{}
	for _, f := range files {
		// unknownenv.go names the variables chatd does not read but lets
		// pass without a warning (the deploy kit's and the e2e tests'), so
		// they are no settings to document.
		if strings.HasSuffix(f, "_test.go") || filepath.Base(f) == "unknownenv.go" {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range envNameRE.FindAllStringSubmatch(string(src), -1) {
			if name := m[1]; !seen[name] {
				seen[name] = true
				if !documented[name] {
					missing = append(missing, name)
				}
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("found no environment variable names in cmd/chatd: has the configuration moved?")
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("deploy/chatd.env.example does not document %s", strings.Join(missing, ", "))
	}
	t.Logf("%d settings documented", len(seen))
}
