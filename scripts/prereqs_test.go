// Package scripts holds the tests of the repository's shell scripts and
// of the Makefile's rules.
package scripts

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// allPrograms are the programs prereqs.sh looks for on PATH, and the apt
// packages that provide them, in the script's order.
var allPrograms = []struct{ program, pkg string }{
	{"make", "make"}, {"git", "git"}, {"curl", "curl"}, {"openssl", "openssl"}, {"gcc", "gcc"},
	{"nginx", "nginx"}, {"logrotate", "logrotate"}, {"systemd-analyze", "systemd"}, {"chromium", "chromium"},
}

const aptPackages = "make git curl openssl gcc nginx logrotate systemd chromium"

// prereqsRun is one run of prereqs.sh with a PATH of stub programs only.
type prereqsRun struct {
	stdout, stderr string
	exit           int
	took           time.Duration
	aptCalls       []string // the fake apt-get's arguments, one call a line
}

// stub writes an executable shell script into dir.
func stub(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/bash\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// runPrereqs runs the script with PATH = a directory holding only the
// given stubs (name -> script body), plus env.
func runPrereqs(t *testing.T, stubs map[string]string, env ...string) prereqsRun {
	t.Helper()
	return runPrereqsArgs(t, nil, stubs, env...)
}

// runPrereqsArgs is runPrereqs with arguments for the script.
func runPrereqsArgs(t *testing.T, args []string, stubs map[string]string, env ...string) prereqsRun {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	bin := t.TempDir()
	for name, body := range stubs {
		stub(t, bin, name, body)
	}
	log := filepath.Join(t.TempDir(), "apt-get.log")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, append([]string{"prereqs.sh"}, args...)...)
	// No directory of this machine is appended to PATH unless env says so.
	cmd.Env = append([]string{"PATH=" + bin, "FAKE_LOG=" + log, "FAKE_BIN=" + bin, "PREREQS_EXTRA_PATH="}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	r := prereqsRun{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run prereqs.sh: %v", err)
	}
	if b, err := os.ReadFile(log); err == nil {
		r.aptCalls = strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	return r
}

// fakeAptGet logs its arguments; with provide, an install also creates
// stubs of every program, as the real packages would.
func fakeAptGet(t *testing.T, provide bool) string {
	t.Helper()
	chmod, err := exec.LookPath("chmod")
	if err != nil {
		t.Fatalf("chmod: %v", err)
	}
	body := `printf '%s\n' "$*" >>"$FAKE_LOG"`
	if provide {
		var names []string
		for _, p := range allPrograms {
			names = append(names, p.program)
		}
		body += fmt.Sprintf(`
if [ "$1" = install ]; then
	for p in %s; do printf '#!/bin/bash\n' >"$FAKE_BIN/$p"; %s +x "$FAKE_BIN/$p"; done
fi`, strings.Join(names, " "), chmod)
	}
	dir := t.TempDir()
	stub(t, dir, "apt-get", body)
	return filepath.Join(dir, "apt-get")
}

// goodGoNode are stubs of a Go and a Node.js recent enough, with npm.
func goodGoNode() map[string]string {
	return map[string]string{
		"go":   `echo "go version go1.26.8 linux/amd64"`,
		"node": `echo 20.20.2`,
		"npm":  `exit 0`,
	}
}

func everything() map[string]string {
	s := goodGoNode()
	for _, p := range allPrograms {
		s[p.program] = "exit 0"
	}
	return s
}

func TestPrereqs(t *testing.T) {
	t.Parallel()
	withAll := fakeAptGet(t, true)
	withNothing := fakeAptGet(t, false)
	installLine := "install -y -qq --no-install-recommends " + aptPackages

	tests := []struct {
		name     string
		stubs    map[string]string
		env      []string
		exit     int
		stderr   []string // all must appear
		stdout   string   // must appear
		notErr   []string // none may appear
		aptCalls []string
	}{{
		name:  "bare PATH: one message listing everything and the one command",
		stubs: nil,
		exit:  1,
		stderr: []string{"make test cannot run",
			"apt-get is not on this machine (not Debian or Ubuntu?): install them with its own package manager.",
			"On Debian or Ubuntu, one command installs them all:",
			"apt-get update && apt-get install -y --no-install-recommends " + aptPackages,
			"Install these yourself (apt-cache is not on this machine, so apt was not asked for them):",
			"Go: the version go.mod names", "Node.js 20.19 or later 20.x, or 22.12 or later (what vite 8 accepts), with npm"},
		notErr: []string{"apt has no suitable version", "Install them all with one command:"},
	}, {
		name:  "apt-get on PATH: the one command, without a word on other systems",
		stubs: map[string]string{"apt-get": "exit 0", "apt-cache": "exit 0"},
		env:   []string{"PREREQS_DRY_RUN=1"},
		exit:  1,
		stderr: []string{"Install them all with one command:",
			"apt-get update && apt-get install -y --no-install-recommends " + aptPackages},
		notErr: []string{"not Debian or Ubuntu?", "apt-cache is not on this machine"},
	}, {
		name:   "everything present: silent",
		stubs:  everything(),
		exit:   0,
		notErr: []string{"make test cannot run", "installing"},
	}, {
		name: "Node too old and apt offers no newer one",
		stubs: func() map[string]string {
			s := everything()
			s["node"] = "echo 18.20.4"
			s["apt-cache"] = `printf 'nodejs:\n  Installed: 18.19.0+dfsg-6\n  Candidate: 18.19.0+dfsg-6\n'`
			return s
		}(),
		exit: 1,
		stderr: []string{"Install these yourself:",
			"Node.js 20.19 or later 20.x, or 22.12 or later (what vite 8 accepts), with npm (found 18.20.4); apt offers only 18.19.0"},
		notErr: []string{"Install them all", "nginx", "apt-cache is not on this machine"},
	}, {
		name:   "Node too old and no apt-cache to ask: says apt-cache is missing, not that apt has no version",
		stubs:  func() map[string]string { s := everything(); s["node"] = "echo 18.20.4"; return s }(),
		exit:   1,
		stderr: []string{"Install these yourself (apt-cache is not on this machine, so apt was not asked for them):", "(found 18.20.4)"},
		notErr: []string{"apt has no suitable version", "apt offers only"},
	}, {
		name:   "Node 21: refused, vite 8 does not run on it",
		stubs:  func() map[string]string { s := everything(); s["node"] = "echo 21.7.3"; return s }(),
		exit:   1,
		stderr: []string{"22.12 or later (what vite 8 accepts), with npm (found 21.7.3)"},
	}, {
		name:   "Node 22 before 22.12: refused",
		stubs:  func() map[string]string { s := everything(); s["node"] = "echo 22.11.0"; return s }(),
		exit:   1,
		stderr: []string{"(found 22.11.0)"},
	}, {
		name:   "Node 22.12: accepted",
		stubs:  func() map[string]string { s := everything(); s["node"] = "echo 22.12.0"; return s }(),
		exit:   0,
		notErr: []string{"make test cannot run"},
	}, {
		name:   "Node 24: accepted",
		stubs:  func() map[string]string { s := everything(); s["node"] = "echo 24.1.0"; return s }(),
		exit:   0,
		notErr: []string{"make test cannot run"},
	}, {
		name:   "Go and Node missing: nothing installed, all named at once",
		stubs:  nil,
		env:    []string{"PREREQS_APT_GET=" + withAll},
		exit:   1,
		stderr: []string{"Install them all with one command:", "Install these yourself"},
	}, {
		name:     "installer: one update, one install of every package, then checks again",
		stubs:    goodGoNode(),
		env:      []string{"PREREQS_APT_GET=" + withAll},
		exit:     0,
		stderr:   []string{"prereqs: installing " + aptPackages},
		notErr:   []string{"make test cannot run"},
		aptCalls: []string{"update -qq", installLine},
	}, {
		name:     "installer that installs nothing: says what is still missing",
		stubs:    goodGoNode(),
		env:      []string{"PREREQS_APT_GET=" + withNothing},
		exit:     1,
		stderr:   []string{"still missing after apt-get install " + aptPackages, "chromium"},
		aptCalls: []string{"update -qq", installLine},
	}, {
		name:   "dry run prints the commands and runs none",
		stubs:  goodGoNode(),
		env:    []string{"PREREQS_APT_GET=" + withAll, "PREREQS_DRY_RUN=1"},
		exit:   0,
		stderr: []string{"prereqs: installing " + aptPackages},
		stdout: withAll + " install -y --no-install-recommends " + aptPackages,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runPrereqs(t, tt.stubs, tt.env...)
			if r.exit != tt.exit {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.exit, tt.exit, r.stderr)
			}
			if r.took > 5*time.Second {
				t.Errorf("took %s, want a few seconds at most", r.took)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			if !strings.Contains(r.stdout, tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, r.stdout)
			}
			for _, s := range tt.notErr {
				if strings.Contains(r.stderr, s) {
					t.Errorf("stderr has %q:\n%s", s, r.stderr)
				}
			}
			if strings.Join(r.aptCalls, "|") != strings.Join(tt.aptCalls, "|") {
				t.Errorf("apt-get calls %q, want %q", r.aptCalls, tt.aptCalls)
			}
			if tt.exit == 1 && strings.Count(r.stderr, "make test cannot run") != 1 {
				t.Errorf("want exactly one message:\n%s", r.stderr)
			}
		})
	}
}

// TestPrereqsUpdatesAptListsForNode: a fresh Debian (a container, a new
// cloud image) has no apt lists until `apt-get update`, so apt-cache offers
// no nodejs at all; as root the script updates them before it decides that
// Node.js must be installed by hand, and installs apt's when it fits.
func TestPrereqsUpdatesAptListsForNode(t *testing.T) {
	t.Parallel()
	chmod, err := exec.LookPath("chmod")
	if err != nil {
		t.Fatalf("chmod: %v", err)
	}
	stubs := everything()
	delete(stubs, "node")
	delete(stubs, "npm")
	// apt-cache knows nodejs only once the lists were updated.
	stubs["apt-cache"] = `[ -e "$FAKE_BIN/.updated" ] || { printf 'nodejs:\n  Installed: (none)\n  Candidate: (none)\n'; exit 0; }
printf 'nodejs:\n  Installed: (none)\n  Candidate: 20.19.2+dfsg-1\n'`
	dir := t.TempDir()
	stub(t, dir, "apt-get", fmt.Sprintf(`printf '%%s\n' "$*" >>"$FAKE_LOG"
case "$1" in
update) : >"$FAKE_BIN/.updated" ;;
install)
	printf '#!/bin/bash\necho 20.19.2\n' >"$FAKE_BIN/node"
	printf '#!/bin/bash\nexit 0\n' >"$FAKE_BIN/npm"
	%[1]s +x "$FAKE_BIN/node" "$FAKE_BIN/npm" ;;
esac`, chmod))
	r := runPrereqs(t, stubs, "PREREQS_APT_GET="+filepath.Join(dir, "apt-get"))
	if r.exit != 0 {
		t.Fatalf("exit %d, want 0; stderr:\n%s", r.exit, r.stderr)
	}
	want := []string{"update -qq", "install -y -qq --no-install-recommends nodejs npm"}
	if strings.Join(r.aptCalls, "|") != strings.Join(want, "|") {
		t.Errorf("apt-get calls %q, want %q (one update, before the decision)", r.aptCalls, want)
	}
}

// TestPrereqsListsEveryProgram checks the bare-PATH message names each
// program and its package once.
func TestPrereqsListsEveryProgram(t *testing.T) {
	t.Parallel()
	r := runPrereqs(t, nil)
	for _, p := range allPrograms {
		if n := strings.Count(r.stderr, "\n  "+p.program+" "); n != 1 {
			t.Errorf("%s listed %d times:\n%s", p.program, n, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want the message on stderr only", r.stdout)
	}
}

// buildTools are stubs of what make run needs: make, and a Go and a
// Node.js recent enough, with npm.
func buildTools() map[string]string {
	s := goodGoNode()
	s["make"] = "exit 0"
	return s
}

// TestPrereqsBuild: make run (and make build) check only what building and
// running chatd needs, so a newcomer's first command fails at once with one
// message naming Go and Node.js instead of "npm: command not found" and,
// once Node.js is there, "go: command not found"; what apt has, root gets.
// Make is among them: a minimal Debian has none, and the README sends such
// a machine to scripts/prereqs.sh --build first.
func TestPrereqsBuild(t *testing.T) {
	t.Parallel()
	t.Run("bare PATH: make, Go and Node.js named in one message, nothing of the test suites", func(t *testing.T) {
		t.Parallel()
		r := runPrereqsArgs(t, []string{"--build"}, nil)
		if r.exit != 1 {
			t.Fatalf("exit %d, want 1; stderr:\n%s", r.exit, r.stderr)
		}
		for _, s := range []string{"make run cannot start", "\n  make ", "apt-get install -y --no-install-recommends make\n",
			"Go: the version go.mod names", "Node.js 20.19 or later", "Then run make run again."} {
			if !strings.Contains(r.stderr, s) {
				t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
			}
		}
		for _, s := range []string{"nginx", "chromium", "logrotate", "gcc", "make test"} {
			if strings.Contains(r.stderr, s) {
				t.Errorf("stderr names %q, which building does not need:\n%s", s, r.stderr)
			}
		}
		if r.took > 5*time.Second {
			t.Errorf("took %s", r.took)
		}
	})
	t.Run("make, Go and Node.js present: silent, whatever the test suites lack", func(t *testing.T) {
		t.Parallel()
		r := runPrereqsArgs(t, []string{"--build"}, buildTools())
		if r.exit != 0 || r.stderr != "" {
			t.Fatalf("exit %d, stderr:\n%s", r.exit, r.stderr)
		}
	})
	t.Run("as root, apt's Node.js is installed, and only it", func(t *testing.T) {
		t.Parallel()
		stubs := map[string]string{
			"make":      "exit 0",
			"go":        `echo "go version go1.26.8 linux/amd64"`,
			"apt-cache": `printf 'nodejs:\n  Installed: (none)\n  Candidate: 20.19.2+dfsg-1\n'`,
		}
		r := runPrereqsArgs(t, []string{"--build"}, stubs, "PREREQS_APT_GET="+fakeAptGet(t, false), "PREREQS_DRY_RUN=1")
		if r.exit != 0 {
			t.Fatalf("exit %d, want 0; stderr:\n%s", r.exit, r.stderr)
		}
		if !strings.Contains(r.stdout, "install -y --no-install-recommends nodejs npm\n") {
			t.Errorf("stdout %q, want the install of nodejs npm alone", r.stdout)
		}
	})
	t.Run("a minimal Debian as root: make and apt's Node.js in one install", func(t *testing.T) {
		t.Parallel()
		stubs := map[string]string{
			"go":        `echo "go version go1.26.8 linux/amd64"`,
			"apt-cache": `printf 'nodejs:\n  Installed: (none)\n  Candidate: 20.19.2+dfsg-1\n'`,
		}
		r := runPrereqsArgs(t, []string{"--build"}, stubs, "PREREQS_APT_GET="+fakeAptGet(t, false), "PREREQS_DRY_RUN=1")
		if r.exit != 0 {
			t.Fatalf("exit %d, want 0; stderr:\n%s", r.exit, r.stderr)
		}
		if !strings.Contains(r.stdout, "install -y --no-install-recommends make nodejs npm\n") {
			t.Errorf("stdout %q, want one install of make nodejs npm", r.stdout)
		}
	})
	t.Run("only make missing, as root: make installed, then checked again", func(t *testing.T) {
		t.Parallel()
		r := runPrereqsArgs(t, []string{"--build"}, goodGoNode(), "PREREQS_APT_GET="+fakeAptGet(t, true))
		if r.exit != 0 {
			t.Fatalf("exit %d, want 0; stderr:\n%s", r.exit, r.stderr)
		}
		want := []string{"update -qq", "install -y -qq --no-install-recommends make"}
		if strings.Join(r.aptCalls, "|") != strings.Join(want, "|") {
			t.Errorf("apt-get calls %q, want %q", r.aptCalls, want)
		}
	})
}

// TestPrereqsFindsSbin: nginx and logrotate live in /usr/sbin on Debian,
// which a user's PATH (or root's after a plain su) may lack; the script
// looks there itself, as the Makefile does, rather than report them missing
// and reinstall them. The test's stand-in for /usr/sbin is a directory of
// its own, given as PREREQS_EXTRA_PATH.
func TestPrereqsFindsSbin(t *testing.T) {
	t.Parallel()
	sbin := t.TempDir()
	stubs := everything()
	for _, name := range []string{"nginx", "logrotate"} {
		delete(stubs, name)
		stub(t, sbin, name, "exit 0")
	}
	r := runPrereqs(t, stubs, "PREREQS_APT_GET="+fakeAptGet(t, false), "PREREQS_EXTRA_PATH="+sbin)
	if r.exit != 0 || r.stderr != "" || len(r.aptCalls) != 0 {
		t.Fatalf("exit %d, apt-get calls %q, stderr:\n%s", r.exit, r.aptCalls, r.stderr)
	}
}

// TestPrereqsGoToolchainLocal: a Go older than go.mod's go line fetches the
// version named there itself, unless GOTOOLCHAIN forbids it (local, path,
// <name>+path; set in the environment or in go.env, as Homebrew's Go does).
// Such a Go is refused at once, naming Go and why, rather than make run
// building the whole web client before go build fails.
func TestPrereqsGoToolchainLocal(t *testing.T) {
	t.Parallel()
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go ([0-9.]+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatalf("no go line in go.mod:\n%s", mod)
	}
	modGo := string(m[1])
	tests := []struct {
		name, version, toolchain string // toolchain: what go env GOTOOLCHAIN prints
		env                      []string
		exit                     int
	}{
		{name: "old Go, GOTOOLCHAIN=local in go.env: refused", version: "1.22.5", toolchain: "local", exit: 1},
		{name: "old Go, GOTOOLCHAIN=local in the environment: refused", version: "1.22.5", toolchain: "$GOTOOLCHAIN", env: []string{"GOTOOLCHAIN=local"}, exit: 1},
		{name: "old Go, GOTOOLCHAIN=path: refused", version: "1.22.5", toolchain: "path", exit: 1},
		{name: "old Go, GOTOOLCHAIN=local+path: refused", version: "1.22.5", toolchain: "local+path", exit: 1},
		{name: "old Go that fetches (auto): accepted", version: "1.22.5", toolchain: "auto", exit: 0},
		{name: "old Go that fetches (local+auto): accepted", version: "1.22.5", toolchain: "local+auto", exit: 0},
		{name: "go.mod's Go, local: accepted", version: modGo, toolchain: "local", exit: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stubs := everything()
			stubs["go"] = fmt.Sprintf(`case "$1" in
env) echo "%s" ;;
*) echo "go version go%s linux/amd64" ;;
esac`, tt.toolchain, tt.version)
			r := runPrereqs(t, stubs, tt.env...)
			if r.exit != tt.exit {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.exit, tt.exit, r.stderr)
			}
			if tt.exit == 0 {
				return
			}
			for _, s := range []string{"make test cannot run", "  Go " + modGo + " or later", "found " + tt.version, "forbids fetching it", "GOTOOLCHAIN=auto"} {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
		})
	}
}

// TestPrereqsNodeAptNotAsked: as root, with Go missing too, nothing is
// installed, so the package lists are not updated; when apt-cache then
// offers no nodejs (a fresh Debian has no lists), the message says the
// lists were not updated, never that apt has no suitable version. Once
// they were updated, "none" is apt's answer.
func TestPrereqsNodeAptNotAsked(t *testing.T) {
	t.Parallel()
	noNode := func() map[string]string {
		s := everything()
		delete(s, "node")
		delete(s, "npm")
		s["apt-cache"] = `printf 'nodejs:\n  Installed: (none)\n  Candidate: (none)\n'`
		return s
	}
	goMissing := noNode()
	delete(goMissing, "go")
	tests := []struct {
		name         string
		stubs        map[string]string
		want, reject []string
		aptCalls     []string
	}{{
		name:     "Go missing too: lists not updated, and said so",
		stubs:    goMissing,
		want:     []string{"Install these yourself:", "with npm; apt-cache offers none, but its package lists were not updated here (update them, then run this again)", "  Go: "},
		reject:   []string{"apt has no suitable version", "apt offers none"},
		aptCalls: nil,
	}, {
		name:     "only Node.js missing: lists updated, apt offers none",
		stubs:    noNode(),
		want:     []string{"Install these yourself:", "with npm; apt offers none:"},
		reject:   []string{"apt has no suitable version", "not updated"},
		aptCalls: []string{"update -qq"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runPrereqs(t, tt.stubs, "PREREQS_APT_GET="+fakeAptGet(t, false))
			if r.exit != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", r.exit, r.stderr)
			}
			for _, s := range tt.want {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			for _, s := range tt.reject {
				if strings.Contains(r.stderr, s) {
					t.Errorf("stderr has %q:\n%s", s, r.stderr)
				}
			}
			if strings.Join(r.aptCalls, "|") != strings.Join(tt.aptCalls, "|") {
				t.Errorf("apt-get calls %q, want %q", r.aptCalls, tt.aptCalls)
			}
		})
	}
}
