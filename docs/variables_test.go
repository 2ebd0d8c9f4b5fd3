package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// variableName is an environment variable (or NATS stream) name as the
// documents spell it.
var variableName = regexp.MustCompile(`\b(?:CHATD|OPENAI|MONGODB|JWT)_[A-Z0-9_]*[A-Z0-9]\b`)

// TestDocumentedVariablesExist: every variable the README, deploy.md,
// scale.md and the annotated environment file name is one the code reads
// (a quoted name in cmd/chatd, the pm2 kit, the deployment tests, or a
// NATS stream of hub/natsbus): a newcomer who copies a name from the
// documents gets a setting, not a silently ignored typo.
func TestDocumentedVariablesExist(t *testing.T) {
	t.Parallel()
	known := map[string]bool{}
	for _, pattern := range []string{"../cmd/chatd/*.go", "../hub/natsbus/*.go", "../deploy/e2e/*.go",
		"../deploy/ecosystem.config.js", "../deploy/pm2-setup.sh"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") && !strings.Contains(f, "deploy/e2e") {
				continue // a name only a test spells is no setting
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, lit := range regexp.MustCompile(`["'$]\{?`+variableName.String()).FindAllString(string(data), -1) {
				known[variableName.FindString(lit)] = true
			}
		}
	}
	if !known["CHATD_ADDR"] || !known["CHATD_BIN"] || !known["CHATD_ANSWERS"] {
		t.Fatalf("the code's names were not found (%d found)", len(known))
	}
	for _, doc := range []string{"../README.md", "deploy.md", "scale.md", "../deploy/chatd.env.example"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, name := range variableName.FindAllString(line, -1) {
				if !known[name] {
					t.Errorf("%s:%d: %s is read by no code", doc, i+1, name)
				}
			}
		}
	}
}
