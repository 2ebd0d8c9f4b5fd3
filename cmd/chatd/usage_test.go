package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCheckArgs: chatd starts only without arguments; -h and its
// spellings print the usage, -version and --version the version, to
// stdout and exit 0; anything else is refused on stderr with exit code 2,
// so that "chatd --help" never starts a server (on :8080, with open
// registration, creating ./data).
func TestCheckArgs(t *testing.T) {
	t.Parallel()
	const (
		nothing = iota // starts, printing nothing
		usage          // the usage on stdout
		version        // the version on stdout
		refusal        // the refusal and the usage on stderr
	)
	cases := []struct {
		args   []string
		start  bool
		code   int
		prints int
	}{
		{nil, true, 0, nothing},
		{[]string{}, true, 0, nothing},
		{[]string{"-h"}, false, 0, usage},
		{[]string{"-help"}, false, 0, usage},
		{[]string{"--help"}, false, 0, usage},
		{[]string{"-version"}, false, 0, version},
		{[]string{"--version"}, false, 0, version},
		{[]string{"-v"}, false, 2, refusal},
		{[]string{"version"}, false, 2, refusal},
		{[]string{"serve"}, false, 2, refusal},
		{[]string{"-addr", ":9090"}, false, 2, refusal},
		{[]string{""}, false, 2, refusal},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		code, start := checkArgs(c.args, &stdout, &stderr)
		if start != c.start || code != c.code {
			t.Errorf("checkArgs(%q) = %d, %v; want %d, %v", c.args, code, start, c.code, c.start)
		}
		var ok bool
		switch c.prints {
		case nothing:
			ok = stdout.Len()+stderr.Len() == 0
		case usage:
			ok = strings.Contains(stdout.String(), "Usage: chatd") && stderr.Len() == 0
		case version:
			ok = stdout.String() == currentBuild().String() && strings.HasPrefix(stdout.String(), "chatd ") && stderr.Len() == 0
		case refusal:
			ok = strings.Contains(stderr.String(), "takes no arguments") && strings.Contains(stderr.String(), "Usage: chatd") && stdout.Len() == 0
		}
		if !ok {
			t.Errorf("checkArgs(%q): stdout %q, stderr %q; want %s", c.args, stdout.String(), stderr.String(),
				[]string{"nothing", "the usage on stdout only", "the version on stdout only", "the refusal and usage on stderr only"}[c.prints])
		}
	}
	var out bytes.Buffer
	checkArgs([]string{"-h"}, &out, &out)
	for _, want := range []string{"CHATD_", "README.md", "Configuration", "deploy/chatd.env.example", "chatd -version"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the usage does not mention %s:\n%s", want, out.String())
		}
	}
}

// TestMainRefusesArguments runs chatd's main (this test binary, see
// TestMain) in an empty directory: "--help", "--version" and a stray
// argument end at once with their exit codes, and start nothing: no
// ./data is created.
func TestMainRefusesArguments(t *testing.T) {
	t.Parallel()
	cases := []struct {
		arg      string
		code     int
		inStdout string
		inStderr string
	}{
		{"--help", 0, "Usage: chatd", ""},
		{"-h", 0, "Usage: chatd", ""},
		{"--version", 0, currentBuild().String(), ""},
		{"-version", 0, currentBuild().String(), ""},
		{"serve", 2, "", "unexpected argument \"serve\""},
	}
	for _, c := range cases {
		t.Run(c.arg, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			// Ample for a usage; a server started by mistake is stopped then.
			const limit = 15 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), limit)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$", c.arg)
			cmd.Dir = dir
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "CHATD_") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, envRunMain+"=1", "CHATD_ADDR=127.0.0.1:0")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := cmd.ProcessState.ExitCode()
			if ctx.Err() != nil {
				t.Fatalf("chatd %s still ran after %s (a server started?): %v\n%s", c.arg, limit, err, stdout.String())
			}
			if code != c.code {
				t.Errorf("chatd %s exited %d (%v); want %d", c.arg, code, err, c.code)
			}
			if !strings.Contains(stdout.String(), c.inStdout) || !strings.Contains(stderr.String(), c.inStderr) {
				t.Errorf("chatd %s: stdout %q, stderr %q", c.arg, stdout.String(), stderr.String())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("chatd %s created %v in its working directory", c.arg, entries)
			}
		})
	}
}
