package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignalExits runs chatd as a child process whose graceful
// shutdown waits (a request's body never arrives, the grace is 5 minutes):
// the first SIGTERM starts the shutdown, the second ends the process at
// once with exit status 1 and says so.
func TestSecondSignalExits(t *testing.T) {
	t.Parallel()
	c := startProcess(t, testEnv(t.TempDir(), "CHATD_SHUTDOWN_GRACE", "5m", "CHATD_BODY_READ_TIMEOUT", "5m"))
	waitReadyz(t, c.url)
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The server answers 100 Continue when the handler starts reading the
	// body: from then on the request is in flight, and stays so.
	fmt.Fprint(conn, "POST /api/auth/login HTTP/1.1\r\nHost: chatd\r\nContent-Type: application/json\r\n"+
		"Content-Length: 100\r\nExpect: 100-continue\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("want 100 Continue, got %q (%v)", line, err)
	}

	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, c, `"msg":"shutting down"`)
	exited := make(chan error, 1)
	go func() { exited <- c.cmd.Wait() }()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("exit after the second signal: %v, want exit status 1", err)
		}
	case <-time.After(testTimeout):
		_ = c.cmd.Process.Kill()
		<-exited
		t.Fatalf("still running %v after the second SIGTERM", testTimeout)
	}
	if !strings.Contains(c.logs.String(), "second signal") {
		t.Errorf("no log line for the second signal:\n%s", c.logs)
	}
}

// waitLog polls a child's output until it holds want.
func waitLog(t *testing.T, c *child, want string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !strings.Contains(c.logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never showed %s:\n%s", want, c.logs)
		}
		time.Sleep(10 * time.Millisecond) // polling the output, not synchronising
	}
}
