package docs

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// notOnMinimalDebian are programs the examples run that a minimal Debian
// (a fresh cloud image or container) lacks, each with the apt package
// that installs it (see installs).
var notOnMinimalDebian = map[string]string{
	"rsync": "rsync", "ufw": "ufw", "jq": "jq", "sqlite3": "sqlite3", "certbot": "certbot",
	"nginx": "nginx", "make": "make", "npm": "npm", "curl": "curl", "git": "git", "wget": "wget",
}

// startsHere are the pages a newcomer or an operator starts from: only
// they must say how to get make and npm (the others are read after them).
var startsHere = map[string]bool{"../README.md": true, "deploy.md": true}

// commandRe finds a command's name where a shell line runs one: at its
// start, or after &&, ||, ;, |, ( or sudo.
var commandRe = regexp.MustCompile(`(?:^|&&|\|\||;|\||\(|\bsudo )\s*([a-z][a-z0-9.-]*)\b`)

// TestExamplesInstallWhatTheyRun: a shell example that runs a program
// a minimal Debian lacks says how to install it, earlier in the document
// or in the same section ("rsync: command not found" and "ufw: command
// not found" met whoever followed deploy.md on a fresh Debian, and
// "make: command not found" whoever followed the README's quick start).
func TestExamplesInstallWhatTheyRun(t *testing.T) {
	t.Parallel()
	for _, file := range docFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		lines := strings.Split(text, "\n")
		for _, b := range readBlocks(t, file) {
			if b.lang != "sh" && b.lang != "bash" {
				continue
			}
			for i, line := range b.lines {
				line, _, _ = strings.Cut(line, " #")
				for _, m := range commandRe.FindAllStringSubmatch(strings.TrimSpace(line), -1) {
					pkg, ok := notOnMinimalDebian[m[1]]
					if !ok || ((pkg == "make" || pkg == "npm") && !startsHere[file]) {
						continue
					}
					at := b.line + 1 + i // 1-based line of the command
					before := strings.Join(lines[:at], "\n")
					if !installs(before, pkg) && !installs(sectionAfter(lines, at), pkg) {
						t.Errorf("%s:%d: runs %s, which a minimal Debian lacks, but neither an earlier line nor its section installs it (apt-get install ... %s)", file, at, m[1], pkg)
					}
				}
			}
		}
	}
}

// installs reports whether text installs pkg: an apt-get install naming
// it, or for make and npm, scripts/prereqs.sh --build (which installs
// make, and apt's Node.js with npm when vite 8 accepts it, as root, or
// names where to get them).
func installs(text, pkg string) bool {
	if (pkg == "make" || pkg == "npm") && strings.Contains(text, "scripts/prereqs.sh --build") {
		return true
	}
	return regexp.MustCompile(`apt-get install[^\n` + "`" + `]*\s` + regexp.QuoteMeta(pkg) + `\b`).MatchString(text)
}

// sectionAfter is the text after line at (1-based) up to the next "## "
// heading.
func sectionAfter(lines []string, at int) string {
	var out []string
	for _, l := range lines[at:] {
		if strings.HasPrefix(l, "## ") {
			break
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// TestQuickStartSaysHowToGetMake: right under the README's quick start
// (its first paragraph after the commands) a machine without make, such
// as a minimal Debian, is told what to run first. The hint was only in
// the make test paragraph, and pointed at the whole test toolchain.
func TestQuickStartSaysHowToGetMake(t *testing.T) {
	t.Parallel()
	for _, b := range readBlocks(t, "../README.md") {
		if b.section != "Quick start" {
			continue
		}
		data, err := os.ReadFile("../README.md")
		if err != nil {
			t.Fatal(err)
		}
		after := strings.Split(string(data), "\n")[b.line+len(b.lines)+1:]
		var para []string
		for _, l := range after {
			if l == "" && len(para) > 0 {
				break
			}
			if l != "" {
				para = append(para, l)
			}
		}
		text := strings.Join(para, " ")
		if !strings.Contains(text, "`make`") || !strings.Contains(text, "`bash scripts/prereqs.sh --build`") {
			t.Errorf("README.md: the paragraph under the quick start does not tell a machine without make to run bash scripts/prereqs.sh --build: %q", text)
		}
		return
	}
	t.Fatal("README.md: no code block under \"## Quick start\"")
}
