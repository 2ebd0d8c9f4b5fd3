package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/llm/fakeai"
)

// TestStdoutReaderGone: chatd writes its logs to stdout, and whatever
// reads them may go away (a FIFO's reader killed, pm2's daemon killed,
// `chatd | cat` hung up with its terminal). A SIGTERM then, with an answer
// streaming, still stops chatd gracefully: the tab gets the answer's done
// (interrupted) and a 1001 close, the answer is stored interrupted with
// the text the tab got, and chatd exits with status 0. Before, the first
// log line after the reader left (the signal's own) killed chatd with
// SIGPIPE (exit 141 from a shell): no shutdown, the answer left streaming.
func TestStdoutReaderGone(t *testing.T) {
	t.Parallel()
	fake := fakeai.Start(t, fakeai.Options{})
	dir := t.TempDir()
	env := testEnv(dir, "OPENAI_API_KEY", "sk-test", "OPENAI_BASE_URL", fake.URL, "OPENAI_MODELS", "fake-mini")
	c, stdout := startPiped(t, env)
	waitReadyz(t, c.url)
	token, convID := registerAndCreate(t, c.url)
	ws := dialLive(t, c.url, token)
	writeLive(t, ws, map[string]any{"type": "send", "id": "1", "conversationId": convID,
		"content": "long [[fake tokens=5000 delay=5ms]]"})
	msgID := readLive(t, ws, func(f liveFrame) bool { return f.Type == "ack" }).MessageID
	var text strings.Builder
	joined := func(f liveFrame) bool {
		if f.Type == "delta" && f.MessageID == msgID {
			text.WriteString(f.Text)
		}
		return f.Type == "done" && f.MessageID == msgID
	}
	readLive(t, ws, func(f liveFrame) bool { joined(f); return f.Type == "delta" && f.MessageID == msgID })

	stdout() // the reader goes away
	var waitErr error
	ended := make(chan struct{})
	go func() { waitErr = c.cmd.Wait(); close(ended) }()
	t.Cleanup(func() { _ = c.cmd.Process.Kill(); <-ended }) // before start's Wait
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := func() {
		t.Helper()
		select {
		case <-ended:
		case <-time.After(testTimeout):
			t.Fatalf("still running %s after SIGTERM", testTimeout)
		}
		if got := exitCode(waitErr); got != 0 {
			t.Fatalf("exit after SIGTERM with stdout's reader gone: %v (status %d), want 0\nstderr:\n%s", waitErr, got, c.logs)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var done liveFrame
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			exited()
			t.Fatalf("the tab got no done: %v", err)
		}
		var f liveFrame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("frame %s: %v", data, err)
		}
		if joined(f) {
			done = f
			break
		}
	}
	if done.Status != "interrupted" || done.Seq != text.Len() {
		t.Fatalf("the tab got done %s seq %d after %d bytes", done.Status, done.Seq, text.Len())
	}
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("socket ended with %v, want 1001", err)
	}
	exited()
	env["CHATD_ADDR"] = "127.0.0.1:0" // childCommand set the child's
	s := start(t, env)
	m := waitStored(t, s.url, token, convID, msgID, func(map[string]any) bool { return true })
	if m["status"] != "interrupted" || m["content"] != text.String() {
		t.Fatalf("stored %v with %d bytes; the tab got %d", m["status"], len(m["content"].(string)), text.Len())
	}
}

// startPiped is startProcess with chatd's stdout on a pipe, read by the
// test until closeReader closes its read end (stdout's reader gone). c.logs
// holds stderr.
func startPiped(t *testing.T, env map[string]string) (c *child, closeReader func()) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c = childCommand(t, env)
	c.cmd.Stdout, c.cmd.Stderr = pw, c.logs
	c.start(t)
	pw.Close() // chatd holds the only write end
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, pr); close(copied) }()
	closeReader = sync.OnceFunc(func() {
		pr.Close() // wakes the copy up; the descriptor is closed once it returned
		<-copied
	})
	t.Cleanup(closeReader)
	return c, closeReader
}
