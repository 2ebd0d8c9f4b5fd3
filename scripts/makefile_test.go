package scripts

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// frontendTree is a copy of the repository's Makefile beside a web client
// of a few files, built by a fake npm that logs its calls.
type frontendTree struct {
	dir, log string
}

// newFrontendTree lays the tree out, every file dated an hour ago.
func newFrontendTree(t *testing.T) frontendTree {
	t.Helper()
	dir := t.TempDir()
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"Makefile":                    string(mk),
		"frontend/package.json":       "{}",
		"frontend/package-lock.json":  "{}",
		"frontend/index.html":         "<div id=root></div>",
		"frontend/src/main.tsx":       "export {};",
		"frontend/src/lib/socket.ts":  "export {};",
		"frontend/vite.config.ts":     "export default {};",
		"frontend/tsconfig.json":      "{}",
		"bin/npm":                     fakeNPM,
		"frontend/src/styles/app.css": "body {}",
	}
	hourAgo := time.Now().Add(-time.Hour)
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, hourAgo, hourAgo); err != nil {
			t.Fatal(err)
		}
	}
	return frontendTree{dir: dir, log: filepath.Join(dir, "npm.log")}
}

// fakeNPM logs its arguments; `ci` makes node_modules, `run build` writes
// dist/index.html and, with FAIL_BUILD=1, then fails (as a vite build
// that dies after its first file). `run e2e` and `run e2e:nginx` (the
// browser suites) each mark that they started, then wait up to 10 s for
// the other to start, and fail if it does not: they pass only side by side.
const fakeNPM = `#!/bin/bash
printf '%s\n' "$*" >>../npm.log
case "$1 $2" in
"ci "*) mkdir -p node_modules ;;
"run e2e"*) touch "../started-$2"
	for _ in $(seq 100); do
		[ -e ../started-e2e ] && [ -e ../started-e2e:nginx ] && exit 0
		sleep 0.1
	done
	exit 1 ;;
"run "*) rm -rf dist && mkdir -p dist && echo built >dist/index.html
	[ "${FAIL_BUILD:-}" != 1 ] || exit 1 ;;
esac`

// make runs `make frontend` in the tree and returns npm's calls.
func (f frontendTree) make(t *testing.T, env ...string) ([]string, error) {
	t.Helper()
	return f.makeTarget(t, "frontend", env...)
}

// makeTarget runs `make <target>` in the tree and returns npm's calls.
func (f frontendTree) makeTarget(t *testing.T, target string, env ...string) ([]string, error) {
	t.Helper()
	_ = os.Remove(f.log)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", target, "NPM="+filepath.Join(f.dir, "bin", "npm"))
	cmd.Dir = f.dir
	for _, kv := range os.Environ() { // not the flags of a make running these tests
		if name, _, _ := strings.Cut(kv, "="); name != "MAKEFLAGS" && name != "MFLAGS" && name != "MAKELEVEL" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("make %s: %v\n%s", target, err, out)
	}
	b, rerr := os.ReadFile(f.log)
	if rerr != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n"), err
}

// changeAfterBuild changes path (relative to the tree; made if new) after
// the last build: the build is dated a minute ago, the change now, so
// that no date lies in the future.
func (f frontendTree) changeAfterBuild(t *testing.T, path string) {
	t.Helper()
	now := time.Now()
	minuteAgo := now.Add(-time.Minute)
	if err := os.Chtimes(filepath.Join(f.dir, "frontend/dist/index.html"), minuteAgo, minuteAgo); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(f.dir, path)
	if _, err := os.Stat(full); os.IsNotExist(err) {
		if err := os.WriteFile(full, []byte("export {};"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(full, now, now); err != nil {
		t.Fatal(err)
	}
}

// TestMakeFrontendOnlyWhenChanged: make run (make build, make frontend)
// builds the web client when it was never built, after any change to its
// sources or packages, and after a failed build, and not otherwise: a
// second make run starts without the half-minute rebuild.
func TestMakeFrontendOnlyWhenChanged(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make on this machine")
	}
	f := newFrontendTree(t)
	steps := []struct {
		name   string
		change func(t *testing.T) // before make
		env    []string
		fails  bool
		calls  []string // npm's calls
	}{
		{name: "never built: packages installed, then built",
			calls: []string{"ci --no-audit --no-fund", "run build"}},
		{name: "nothing changed: nothing run"},
		{name: "a source changed: built again", calls: []string{"run build"},
			change: func(t *testing.T) { f.changeAfterBuild(t, "frontend/src/lib/socket.ts") }},
		{name: "nothing changed since: nothing run"},
		{name: "a new source: built again", calls: []string{"run build"},
			change: func(t *testing.T) { f.changeAfterBuild(t, "frontend/src/lib/new.ts") }},
		{name: "index.html changed: built again", calls: []string{"run build"},
			change: func(t *testing.T) { f.changeAfterBuild(t, "frontend/index.html") }},
		{name: "package-lock.json changed: packages installed again, then built", calls: []string{"ci --no-audit --no-fund", "run build"},
			change: func(t *testing.T) { f.changeAfterBuild(t, "frontend/package-lock.json") }},
		{name: "a build that fails after writing index.html", calls: []string{"run build"}, env: []string{"FAIL_BUILD=1"}, fails: true,
			change: func(t *testing.T) { f.changeAfterBuild(t, "frontend/src/main.tsx") }},
		{name: "after a failed build: built again", calls: []string{"run build"}},
		{name: "and then nothing run"},
	}
	for _, s := range steps { // in order: each step starts from the one before
		if s.change != nil {
			s.change(t)
		}
		calls, err := f.make(t, s.env...)
		if (err != nil) != s.fails {
			t.Fatalf("%s: make frontend: %v, want failure %v", s.name, err, s.fails)
		}
		if strings.Join(calls, "|") != strings.Join(s.calls, "|") {
			t.Fatalf("%s: npm calls %q, want %q", s.name, calls, s.calls)
		}
	}
}

// TestMakeBrowserSuitesSideBySide: make test-browser runs both browser
// suites, the direct one and the one through nginx, at the same time (the
// fake npm's suites each wait for the other to start), after the web
// client is built.
func TestMakeBrowserSuitesSideBySide(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make on this machine")
	}
	f := newFrontendTree(t)
	calls, err := f.makeTarget(t, "test-browser")
	if err != nil {
		t.Fatalf("make test-browser: %v (npm calls %q)", err, calls)
	}
	want := map[string]bool{"ci --no-audit --no-fund": true, "run build": true, "run e2e": true, "run e2e:nginx": true}
	if len(calls) != len(want) {
		t.Fatalf("npm calls %q, want each of %v once", calls, want)
	}
	for i, c := range calls {
		if !want[c] {
			t.Fatalf("npm calls %q: unexpected %q", calls, c)
		}
		if i < 2 && strings.HasPrefix(c, "run e2e") {
			t.Fatalf("npm calls %q: a browser suite ran before the web client was built", calls)
		}
	}
}

// TestMakeHelpColumns: make help lists every target with its description
// in one column, so no long target name runs into its text.
func TestMakeHelpColumns(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", "..", "help").CombinedOutput()
	if err != nil {
		t.Fatalf("make help: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	col := -1
	for _, line := range lines {
		name := strings.Fields(line)[0]
		at := strings.Index(line, name) + len(name)
		text := at + len(line[at:]) - len(strings.TrimLeft(line[at:], " "))
		if text == at {
			t.Errorf("make help: %q has no space after the target name", line)
		}
		if col < 0 {
			col = text
		}
		if text != col {
			t.Errorf("make help: %q: description at column %d, the first line's at %d", line, text, col)
		}
	}
	if len(lines) < 10 {
		t.Fatalf("make help listed %d targets:\n%s", len(lines), out)
	}
}

// TestMakeHelpPastable: make help prints the Makefile's descriptions as
// written, so a make variable in one is printed unexpanded; pasted into a
// shell, "$(BENCH_FLAGS)" is a command substitution. And the header, which
// says when make run offers the demo model, names OPENAI_MODELS beside
// OPENAI_API_KEY: a key alone stops the start.
func TestMakeHelpPastable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", "..", "help").CombinedOutput()
	if err != nil {
		t.Fatalf("make help: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "$(") || strings.Contains(line, "${") {
			t.Errorf("make help prints a make variable unexpanded: %s", line)
		}
	}
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	header, _, _ := strings.Cut(string(mk), "\n\n")
	if strings.Contains(header, "OPENAI_API_KEY") && !strings.Contains(header, "OPENAI_MODELS") {
		t.Errorf("the Makefile's header names OPENAI_API_KEY without OPENAI_MODELS:\n%s", header)
	}
}
