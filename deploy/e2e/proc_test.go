package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatd/internal/testport"
)

// repoRoot is the repository's top directory (the test runs in deploy/e2e).
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repository root not found at %s: %v", dir, err)
	}
	return dir
}

// need returns the path of a tool, failing the test with how to install it.
func need(t testing.TB, tool, install string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is required by the deployment test but is not installed: %s (make prereqs lists, and as root installs, everything the tests need)", tool, install)
	}
	return p
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago,
// outside the ephemeral range, so that a process restarted on it finds it
// free again (testport).
func freePort(t testing.TB) int {
	t.Helper()
	return testport.Free(t, 1)[0]
}

// TestMain removes the binaries the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// binaries builds the Go programs the test runs, once per test binary.
var binaries struct {
	once  sync.Once
	dir   string
	err   error
	build sync.Mutex // one build at a time; parallel tests wait for it
}

// buildBinary returns the path of a freshly built ./cmd/<name>.
func buildBinary(t testing.TB, name string) string {
	t.Helper()
	return buildGoBinary(t, name, "./cmd/"+name)
}

// buildGoBinary returns the path of program pkg (a ./cmd directory or a
// module path from go.mod) built as name.
func buildGoBinary(t testing.TB, name, pkg string) string {
	t.Helper()
	binaries.once.Do(func() {
		binaries.dir, binaries.err = os.MkdirTemp("", "chatd-e2e-bin-")
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	binaries.build.Lock()
	defer binaries.build.Unlock()
	out := filepath.Join(binaries.dir, name)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = repoRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// proc is a child process whose output goes to a log file that is printed
// when the test fails.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // set before done is closed
}

// startProc starts a program for the rest of the test; cleanup stops it with
// SIGTERM (SIGKILL after 10 s) and waits for it.
func startProc(t testing.TB, name string, env []string, dir string, argv ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group (stop reaches nginx workers); SIGTERM if the test
	// binary dies without running its cleanups (a timeout panic).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- last lines of %s output (%s):\n%s", name, logPath, tail(logPath, 40))
		}
	})
	return p
}

// stop ends the process group politely, then forcefully.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// exited reports an error if the process has already ended.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v; output:\n%s", p.name, p.err, tail(p.log, 40))
	default:
		return nil
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitOK polls url until it answers 200, the process dies or ctx ends.
func waitOK(ctx context.Context, c *http.Client, url string, p *proc) error {
	var last error
	for {
		if p != nil {
			if err := p.exited(); err != nil {
				return err
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last: %v)", url, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// run runs a command to completion and returns its combined output.
func run(ctx context.Context, env []string, dir string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return out.String(), err
}
