package docs

import (
	"path"
	"regexp"
	"strings"
	"testing"
)

// writeRE is a shell redirect into an absolute path: "> /etc/x/file",
// ">> /etc/x/file", "tee /etc/x/file".
var writeRE = regexp.MustCompile(`(?:^|\s)(?:>>?|tee(?: -a)?)\s*(/[A-Za-z0-9._/-]+)`)

// makeDirRE is a command creating directories: "install -d ... dirs",
// "mkdir -p dirs".
var makeDirRE = regexp.MustCompile(`\b(?:install\s+-d|mkdir\s+-p)\b(.*)`)

// presentDirs exist on any system the documents address (or are made by
// the packages they install before writing there).
var presentDirs = map[string]bool{
	"/etc": true, "/etc/systemd/system": true, "/etc/logrotate.d": true, "/etc/sysctl.d": true, "/dev": true, "/tmp": true,
}

// TestShellWritesHaveTheirDirectory: a file an example writes with a
// redirect or tee lies in a directory that exists: a standard one, or one
// an earlier command of the same document creates (install -d, mkdir -p).
// "openssl rand ... > /etc/mongodb/keyfile" failed on a fresh host: the
// mongodb-org packages do not create /etc/mongodb.
func TestShellWritesHaveTheirDirectory(t *testing.T) {
	for _, file := range docFiles(t) {
		made := map[string]bool{}
		for _, b := range readBlocks(t, file) {
			if b.lang != "sh" && b.lang != "bash" {
				continue
			}
			for i, line := range b.lines {
				line, _, _ = strings.Cut(line, " #")
				if strings.HasPrefix(strings.TrimSpace(line), "#") {
					continue
				}
				if m := makeDirRE.FindStringSubmatch(line); m != nil {
					for _, f := range strings.Fields(m[1]) {
						for f = path.Clean(f); strings.HasPrefix(f, "/") && f != "/"; f = path.Dir(f) {
							made[f] = true
						}
					}
				}
				for _, m := range writeRE.FindAllStringSubmatch(line, -1) {
					if dir := path.Dir(m[1]); !made[dir] && !presentDirs[dir] {
						t.Errorf("%s:%d: writes %s, but no earlier command creates %s (install -d)", file, b.line+1+i, m[1], dir)
					}
				}
			}
		}
	}
}
