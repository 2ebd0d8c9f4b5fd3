package ferret

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// LogLevelEnv names the environment variable that sets the level of the
// FerretDB logs Start routes to the test log: debug, info, warn (the
// default) or error.
const LogLevelEnv = "FERRETDB_LOG_LEVEL"

// Bounds on the steps of Start and of its cleanup.
const (
	startTimeout = time.Minute     // for the server to print its URI
	buildTimeout = 5 * time.Minute // for go build of ferretd
	stopGrace    = 10 * time.Second
)

// Start starts a FerretDB for one test, with its SQLite files in a
// temporary directory and its logs written to tb.Log, and returns its
// MongoDB URI. Every call starts an independent server: parallel tests may
// each have their own.
//
// The server is a process of its own, the ferretd command, built once per
// test binary without the race detector (go build caches it, so only the
// first test binary of a run links it): a test binary built with -race
// would otherwise run FerretDB's SQLite backend under the detector too,
// which makes every query several times slower and finds nothing in this
// repository's code. The process is stopped with SIGTERM (SIGKILL after
// 10 s) when the test ends, and killed if the test binary dies first.
// Cleanups run last-in first-out, so a client opened after Start and
// closed in its own tb.Cleanup disconnects before the server stops; the
// directory is removed after it.
func Start(tb testing.TB) (uri string) {
	tb.Helper()
	bin, err := ferretdBinary()
	if err != nil {
		tb.Fatalf("start ferretdb: %v", err)
	}
	dir := tb.TempDir() // registered first, so removed after the server stops
	found := make(chan string, 1)
	cmd := exec.Command(bin, "-dir", dir)
	cmd.Stdout = &firstLine{found: found}
	cmd.Stderr = &logLines{tb: tb}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start ferretdb: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var waitErr error
	stopped := false
	tb.Cleanup(func() {
		if stopped {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case waitErr = <-exited:
		case <-time.After(stopGrace):
			_ = cmd.Process.Kill()
			waitErr = <-exited
			tb.Errorf("ferretdb did not stop within %s of SIGTERM: killed", stopGrace)
		}
		if waitErr != nil {
			tb.Errorf("ferretdb: %v", waitErr)
		}
	})
	select {
	case line := <-found:
		uri, ok := strings.CutPrefix(line, "MONGODB_URI=")
		if !ok {
			tb.Fatalf("start ferretdb: it printed %q, want MONGODB_URI=<uri>", line)
		}
		return uri
	case waitErr = <-exited:
		stopped = true
		tb.Fatalf("start ferretdb: it exited before taking connections: %v", waitErr)
	case <-time.After(startTimeout):
		tb.Fatalf("start ferretdb: no URI within %s", startTimeout)
	}
	return ""
}

// ferretd is the ferretd binary, built once per test binary.
var ferretd struct {
	once sync.Once
	path string
	err  error
}

// ferretdBinary builds the ferretd command into the user's cache directory
// (chatd-test/<checkout>/ferretd, one per checkout of the module, so runs
// in two checkouts never exec each other's build) and returns its path.
// Test binaries of one go test run build it one at a time (a lock file
// beside it), so the first links it and the rest find it up to date.
func ferretdBinary() (string, error) {
	ferretd.once.Do(func() {
		ferretd.path, ferretd.err = buildFerretd()
	})
	return ferretd.path, ferretd.err
}

func buildFerretd() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("build ferretd: %w", err)
	}
	root, err := moduleRoot()
	if err != nil {
		return "", fmt.Errorf("build ferretd: %w", err)
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(cache, "chatd-test", hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("build ferretd: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "ferretd.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("build ferretd: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("build ferretd: lock %s: %w", lock.Name(), err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()

	out := filepath.Join(dir, "ferretd")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "chatd/persistence/ferret/ferretd")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build chatd/persistence/ferret/ferretd: %w\n%s", err, b)
	}
	return out, nil
}

// moduleRoot returns the directory of the go.mod above the working
// directory (a test runs in its package's directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// firstLine is the server's stdout: it sends the first line to found and
// drops the rest.
type firstLine struct {
	buf   []byte
	found chan<- string
	sent  bool
}

// Write implements io.Writer; exec calls it from one goroutine.
func (w *firstLine) Write(p []byte) (int, error) {
	if !w.sent {
		w.buf = append(w.buf, p...)
		if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
			w.found <- string(w.buf[:i])
			w.sent, w.buf = true, nil
		}
	}
	return len(p), nil
}

// logLines is the server's stderr: each line goes to tb.Log. exec's copy
// ends when the process exits, which Start's cleanup waits for, so nothing
// is logged after the test.
type logLines struct {
	tb  testing.TB
	buf []byte
}

// Write implements io.Writer; exec calls it from one goroutine.
func (w *logLines) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.tb.Log("ferretdb: " + string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// LevelFromEnv reads LogLevelEnv; unknown or empty values mean warn.
func LevelFromEnv() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(os.Getenv(LogLevelEnv)))); err != nil {
		return slog.LevelWarn
	}
	return l
}
