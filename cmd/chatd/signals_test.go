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

// TestSignals runs chatd as a child process whose graceful shutdown waits
// (a request's body never arrives, the grace is 5 minutes) and signals it
// twice. The first signal, SIGHUP too, starts the shutdown and is logged
// by name (a SIGHUP killed chatd on the spot, with no shutdown and no log
// line). A second SIGTERM or SIGINT ends the process at once with exit
// status 1 and says so; a second SIGHUP (a terminal hanging up may send
// two) does not, and the shutdown ends with exit status 0 once the
// request does.
func TestSignals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		first, second syscall.Signal
		wantExit      int
		wantLog       string // after the second signal
	}{
		{syscall.SIGTERM, syscall.SIGTERM, 1, "second signal"},
		{syscall.SIGHUP, syscall.SIGINT, 1, "second signal"},
		{syscall.SIGHUP, syscall.SIGHUP, 0, "hangup while stopping"},
	}
	for _, tt := range tests {
		t.Run(tt.first.String()+" then "+tt.second.String(), func(t *testing.T) {
			t.Parallel()
			c, conn := startHeld(t)
			var waitErr error
			ended := make(chan struct{})
			go func() { waitErr = c.cmd.Wait(); close(ended) }()
			t.Cleanup(func() { _ = c.cmd.Process.Kill(); <-ended }) // before startProcess's Wait
			if err := c.cmd.Process.Signal(tt.first); err != nil {
				t.Fatal(err)
			}
			waitLog(t, c, `"msg":"shutting down"`, ended)
			if !strings.Contains(c.logs.String(), `"msg":"signal: stopping","signal":"`+tt.first.String()+`"`) {
				t.Errorf("no log line naming the first signal, %s:\n%s", tt.first, c.logs)
			}
			if err := c.cmd.Process.Signal(tt.second); err != nil {
				t.Fatal(err)
			}
			waitLog(t, c, tt.wantLog, nil)
			conn.Close() // the request ends: the shutdown can
			select {
			case <-ended:
				if got := exitCode(waitErr); got != tt.wantExit {
					t.Errorf("exit after the second signal: %v (status %d), want exit status %d", waitErr, got, tt.wantExit)
				}
			case <-time.After(testTimeout):
				_ = c.cmd.Process.Kill()
				<-ended
				t.Fatalf("still running %v after the second signal", testTimeout)
			}
			if tt.wantExit == 0 && !strings.Contains(c.logs.String(), `"msg":"stopped"`) {
				t.Errorf("the shutdown did not finish:\n%s", c.logs)
			}
		})
	}
}

// exitCode is the exit status of a child that ended with err (Wait's),
// -1 when a signal killed it.
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// startHeld starts chatd as a child process whose graceful shutdown
// waits on a request in flight, held by conn: the request's body never
// arrives (the grace and the body's read timeout are 5 minutes) until
// conn is closed.
func startHeld(t *testing.T) (*child, net.Conn) {
	t.Helper()
	c := startProcess(t, testEnv(t.TempDir(), "CHATD_SHUTDOWN_GRACE", "5m", "CHATD_BODY_READ_TIMEOUT", "5m"))
	waitReadyz(t, c.url)
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// The server answers 100 Continue when the handler starts reading the
	// body: from then on the request is in flight, and stays so.
	fmt.Fprint(conn, "POST /api/auth/login HTTP/1.1\r\nHost: chatd\r\nContent-Type: application/json\r\n"+
		"Content-Length: 100\r\nExpect: 100-continue\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("want 100 Continue, got %q (%v)", line, err)
	}
	return c, conn
}

// waitLog polls a child's output until it holds want; it fails at once
// when ended (nil: never) is closed first, the child having exited.
func waitLog(t *testing.T, c *child, want string, ended <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !strings.Contains(c.logs.String(), want) {
		select {
		case <-ended:
			if !strings.Contains(c.logs.String(), want) {
				t.Fatalf("chatd exited before the log showed %s:\n%s", want, c.logs)
			}
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log never showed %s:\n%s", want, c.logs)
		}
		time.Sleep(10 * time.Millisecond) // polling the output, not synchronising
	}
}
