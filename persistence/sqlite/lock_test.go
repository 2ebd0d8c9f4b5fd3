package sqlite_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"chatd/persistence/sqlite"
)

// lockChildEnv makes the test binary, re-executed, open the database at
// its value and report the outcome (see TestLockChildProcess).
const lockChildEnv = "CHATD_TEST_LOCK_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(lockChildEnv); path != "" {
		s, err := sqlite.Open(context.Background(), sqlite.Options{Path: path, Logger: quietLogger()})
		if err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(3)
		}
		_ = s.Close(context.Background())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestLockSameProcess (issue 10, item 11): a second Store on the same
// directory is refused while the first is open, with an error naming the
// directory and the holder's process id; it opens once the first closes.
func TestLockSameProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "chatd.db")
	first := openAt(t, path)
	_, err := sqlite.Open(testCtx(t), sqlite.Options{Path: path, Logger: quietLogger()})
	if !errors.Is(err, sqlite.ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	for _, want := range []string{dir, strconv.Itoa(os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if err := first.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	second := openAt(t, path)
	closeOnCleanup(t, second)
}

// TestLockChildProcess (issue 10, item 11): another process cannot open
// the directory while this one holds it, and can once it is released.
func TestLockChildProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "chatd.db")
	child := func() (string, error) {
		cmd := exec.CommandContext(testCtx(t), os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), lockChildEnv+"="+path)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	s := openAt(t, path)
	out, err := child()
	if err == nil {
		t.Fatal("a second process opened a locked data directory")
	}
	if !strings.Contains(out, dir) || !strings.Contains(out, strconv.Itoa(os.Getpid())) {
		t.Fatalf("child's error %q does not name the directory and process %d", out, os.Getpid())
	}
	if err := s.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if out, err := child(); err != nil {
		t.Fatalf("child after release: %v: %s", err, out)
	}
}
