package main

import (
	"bytes"
	"errors"
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
