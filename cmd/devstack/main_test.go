package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestOnly starts each service alone and checks that it prints its own
// line and nothing of the other's before it serves.
func TestOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		only, want, notWant string
	}{
		{"nats", "CHATD_NATS_URL=nats://127.0.0.1:", "MONGODB_URI="},
		{"mongo", "MONGODB_URI=mongodb://127.0.0.1:", "CHATD_NATS_URL="},
	} {
		t.Run(tc.only, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			go func() {
				err := run(ctx, []string{"-dir", t.TempDir(), "-only", tc.only}, pw)
				pw.CloseWithError(err)
				done <- err
			}()
			sc := bufio.NewScanner(pr)
			if !sc.Scan() {
				t.Fatalf("no line printed: %v", sc.Err())
			}
			if line := sc.Text(); !strings.HasPrefix(line, tc.want) || strings.Contains(line, tc.notWant) {
				t.Errorf("printed %q, want a line starting with %q", line, tc.want)
			}
			cancel()
			if sc.Scan() {
				t.Errorf("printed a second line %q", sc.Text())
			}
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
}

// TestRefusesBadArguments: a wrong -only, or a directory given without
// -dir (which would otherwise run in a temporary directory removed on
// exit), stops before anything starts, naming what was wrong. The context
// is already cancelled: nothing may be waited for.
func TestRefusesBadArguments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown service", []string{"-dir", dir, "-only", "redis"}, `-only "redis": want mongo or nats`},
		{"directory without -dir", []string{dir}, `unexpected argument "` + dir + `": name the data directory with -dir ` + dir},
		{"argument after the flags", []string{"-only", "nats", "mongo"}, `unexpected argument "mongo"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := run(ctx, tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run %q: %v, want an error saying %q", tc.args, err, tc.want)
			}
			if code := exitCode(err); code != 2 {
				t.Fatalf("run %q: exit code %d, want 2 (bad arguments)", tc.args, code)
			}
		})
	}
}

// TestHelp: -h prints the flags and ends devstack with exit code 0, not
// as a failure with an error logged; a failing service still exits 1.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"-h", []string{"-h"}, 0},
		{"-help", []string{"-help"}, 0},
		{"unknown flag", []string{"-x"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if code := exitCode(run(ctx, tc.args, io.Discard)); code != tc.want {
				t.Fatalf("run %q: exit code %d, want %d", tc.args, code, tc.want)
			}
		})
	}
	if code := exitCode(errors.New("nats: listen: address in use")); code != 1 {
		t.Fatalf("a service's failure: exit code %d, want 1", code)
	}
}
