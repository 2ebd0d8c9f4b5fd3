package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runsScriptRE is a line that runs a script of the repository by its path,
// as a command of its own: at the start of the line, after a comment's
// marker, a "Usage:" or sudo ("deploy/pm2-setup.sh --startup",
// "//   deploy/smoke.sh https://...", "# Usage: deploy/render-nginx.sh").
// A script run through its interpreter ("bash scripts/prereqs.sh") or
// named in running text is not matched.
var runsScriptRE = regexp.MustCompile(`^\s*(?:#+|//|\*)?\s*(?:Usage:\s*)?(?:sudo\s+(?:-u\s+\S+\s+)?)?(?:\./)?((?:deploy|scripts)/[A-Za-z0-9_.-]+\.sh|\.ci/run)(?:\s|$)`)

// TestScriptsRunDirectlyAreExecutable: a script of the repository that a
// document or a kit file's comment runs by its path is committed
// executable (mode 100755), or the command fails with "Permission denied"
// on a fresh clone: deploy/pm2-setup.sh was 100644 while docs/deploy.md
// and deploy/ecosystem.config.js ran it as deploy/pm2-setup.sh --startup.
func TestScriptsRunDirectlyAreExecutable(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("git", "-C", "..", "ls-files", "-s").Output()
	if err != nil {
		t.Fatalf("git ls-files -s: %v", err)
	}
	mode := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		meta, path, ok := strings.Cut(line, "\t")
		if fields := strings.Fields(meta); ok && len(fields) == 3 {
			mode[path] = fields[0]
		}
	}
	files := docFiles(t)
	for _, pattern := range []string{"../deploy/*", "../scripts/*", "../.ci/*", "../Makefile", "../nginx.conf"} {
		more, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, more...)
	}
	checked := map[string]bool{}
	for _, file := range files {
		if info, err := os.Stat(file); err != nil || info.IsDir() || strings.HasSuffix(file, ".json") {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			m := runsScriptRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			checked[m[1]] = true
			switch mode[m[1]] {
			case "100755":
			case "":
				t.Errorf("%s:%d: runs %s, which the repository does not hold", file, i+1, m[1])
			default:
				t.Errorf("%s:%d: runs %s, committed with mode %s: not executable (git update-index --chmod=+x %s)",
					file, i+1, m[1], mode[m[1]], m[1])
			}
		}
	}
	for _, want := range []string{"deploy/pm2-setup.sh", "deploy/smoke.sh", "scripts/prereqs.sh"} {
		if !checked[want] {
			t.Errorf("no command running %s was found: the pattern no longer matches the documents", want)
		}
	}
}
