package main

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReportFailure: a start refused for two bad variables reads, at a
// terminal, as plain lines naming each (no JSON, no \n escapes), and as
// one JSON log line on a stdout that programs read.
func TestReportFailure(t *testing.T) {
	t.Parallel()
	err := errors.New("invalid configuration:\nCHATD_ADDR: \"8080\" is not a [host]:port\nJWT_TTL: \"7d\" is not a duration")
	plain := "\nchatd stopped: invalid configuration:\n  CHATD_ADDR: \"8080\" is not a [host]:port\n  JWT_TTL: \"7d\" is not a duration\n"
	tests := []struct {
		name                   string
		stdoutTerm, stderrTerm bool
		wantStderr             string
		wantJSON               bool // one JSON line on stdout
	}{
		{"both a terminal (make run)", true, true, plain, false},
		{"neither (systemd, pm2)", false, false, "", true},
		{"stdout to a file, stderr a terminal", false, true, plain, true},
		{"stdout a terminal, stderr to a file", true, false, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			reportFailure(output{&stdout, tt.stdoutTerm}, output{&stderr, tt.stderrTerm}, err)
			if stderr.String() != tt.wantStderr {
				t.Errorf("stderr:\n%q\nwant\n%q", stderr.String(), tt.wantStderr)
			}
			lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			gotJSON := len(lines) == 1 && strings.HasPrefix(lines[0], "{") && strings.Contains(lines[0], `"msg":"chatd stopped"`) &&
				strings.Contains(lines[0], `JWT_TTL`)
			if gotJSON != tt.wantJSON {
				t.Errorf("stdout %q: JSON line %v, want %v", stdout.String(), gotJSON, tt.wantJSON)
			}
		})
	}
}

// TestPM2LogFilesAsDocumented: under pm2 (stdout and stderr to files, no
// terminal) reportFailure writes a failed start to stdout only, pm2's
// chatd.out.log, and the texts that send operators to pm2's log files say
// so: stderr, chatd.error.log, gets panics only. docs/deploy.md and
// deploy/ecosystem.config.js said start-up failures went to stderr, where
// an operator looking for why pm2 shows chatd errored found nothing.
func TestPM2LogFilesAsDocumented(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	reportFailure(output{&stdout, false}, output{&stderr, false}, errors.New("MONGODB_URI: no MongoDB answered"))
	if stderr.Len() != 0 || !strings.Contains(stdout.String(), `"msg":"chatd stopped"`) {
		t.Fatalf("under pm2, a failed start went to stderr %q and stdout %q: the texts below say stdout only", &stderr, &stdout)
	}
	// A sentence (up to . ; or a table's |) that puts start-up failures on stderr.
	onStderr := regexp.MustCompile(`stderr[^.;|]*start-up failures|start-up failures[^.;|]*stderr`)
	for _, d := range []struct{ file, part string }{
		{"../../docs/deploy.md", "(?m)^\\| `out_file`, `error_file` \\|.*$"}, // the pm2 settings' row
		{"../../deploy/ecosystem.config.js", `(?s)// Logs:.*?out_file`},      // the comment on the log files
	} {
		data, err := os.ReadFile(d.file)
		if err != nil {
			t.Fatal(err)
		}
		parts := regexp.MustCompile(d.part).FindAllString(string(data), -1)
		if len(parts) != 1 {
			t.Errorf("%s: %q found %d times, want once: reworded? update this test with the text", d.file, d.part, len(parts))
			continue
		}
		text := strings.Join(strings.Fields(strings.ReplaceAll(parts[0], "//", "")), " ")
		if onStderr.MatchString(text) || !strings.Contains(text, "panics only") || !strings.Contains(text, "start-up failures too") {
			t.Errorf("%s says where start-up failures go under pm2 otherwise than reportFailure does (stdout, start-up failures too; stderr: panics only):\n%s", d.file, text)
		}
	}
}
