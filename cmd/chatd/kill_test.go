package main

import (
	"chatd/internal/syncbuf"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/hub/natsbus/natstest"
	"chatd/llm/fakeai"
	"chatd/persistence/ferret"
)

// envRunMain makes the test binary run chatd's main instead of the tests,
// so a test can start chatd as a real child process (and kill -9 it).
const envRunMain = "CHATD_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		os.Unsetenv(envRunMain) // the test's, no setting: chatd would warn of it
		os.Args = mainArgs(os.Args)
		main()
		os.Exit(0)
	}
	joinWait = time.Second // TestNATSNotJoinedAtStart's warning comes after this
	os.Exit(m.Run())
}

// mainArgs is args without the test binary's own flags (-test.*), which
// a child started to run main carries: main sees only the rest.
func mainArgs(args []string) []string {
	out := args[:1:1]
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "-test.") {
			out = append(out, a)
		}
	}
	return out
}

// TestClusterKill9 (issue 9, behaviour 6, with a real process): instance A,
// a child process, is killed with SIGKILL mid-answer. Within the lease TTL
// instance B stores the answer as interrupted with its last checkpoint's
// text, and B's tab that follows it gets done with status interrupted.
func TestClusterKill9(t *testing.T) {
	t.Parallel()
	nc := natstest.Start(t, natstest.Options{})
	fake := fakeai.Start(t, fakeai.Options{})
	mongoURI := ferret.Start(t)
	// Past a stall of a second or two under -race on a loaded machine,
	// which a 2 s lease could let lapse on the live instance.
	const lease = 5 * time.Second
	env := func(id string) map[string]string {
		return testEnv(t.TempDir(), "MONGODB_URI", mongoURI, "OPENAI_API_KEY", "sk-test",
			"OPENAI_BASE_URL", fake.URL, "OPENAI_MODELS", "fake-mini", "JWT_SECRET", strings.Repeat("k", 32),
			"CHATD_NATS_URL", strings.Join(nc.URLs(), ","), "CHATD_INSTANCE_ID", id,
			"CHATD_LEASE_TTL", lease.String())
	}
	b := start(t, env("b"))
	waitReadyz(t, b.url)
	a := startProcess(t, env("a"))
	waitReadyz(t, a.url)

	token, convID := registerAndCreate(t, b.url)
	onA, onB := dialLive(t, a.url, token), dialLive(t, b.url, token)
	writeLive(t, onA, map[string]any{"type": "send", "id": "1", "conversationId": convID,
		"content": "die [[fake tokens=200 delay=5ms fault=hang_mid after=50]]"})
	msgID := readLive(t, onA, func(f liveFrame) bool { return f.Type == "ack" }).MessageID
	writeLive(t, onB, map[string]any{"type": "subscribe", "id": "s", "conversationId": convID})
	// B's tab joins the answer's text as a client does, up to its done.
	var text strings.Builder
	joined := func(f liveFrame) bool {
		if f.Type == "delta" && f.MessageID == msgID {
			if f.Seq != text.Len()+len(f.Text) {
				t.Fatalf("delta seq %d after %d bytes: gap or duplicate", f.Seq, text.Len())
			}
			text.WriteString(f.Text)
		}
		return f.Type == "done" && f.MessageID == msgID
	}
	readLive(t, onB, func(f liveFrame) bool { joined(f); return f.Type == "delta" && f.MessageID == msgID })
	// All the text before the hang is checkpointed: B's tab then has at
	// most what is stored and must end with exactly that.
	kept := fakeai.ExpectedPrefix(fakeai.Config{Tokens: 200}, 50)
	waitStored(t, b.url, token, convID, msgID, func(m map[string]any) bool { return m["content"] == kept })

	killed := time.Now()
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	done := readLive(t, onB, joined)
	if took := time.Since(killed); done.Status != "interrupted" || took > 3*lease {
		t.Fatalf("B's tab got done %s %s after the kill (lease %s)", done.Status, took, lease)
	}
	m := waitStored(t, b.url, token, convID, msgID, func(m map[string]any) bool { return m["status"] != "streaming" })
	if m["status"] != "interrupted" || len(m["content"].(string)) != done.Seq || done.Seq == 0 {
		t.Fatalf("stored %v with %d bytes; done seq %d", m["status"], len(m["content"].(string)), done.Seq)
	}
	if text.String() != m["content"] {
		t.Fatalf("B's tab has %d bytes, the stored text %d", text.Len(), len(m["content"].(string)))
	}
}

// child is chatd running as a child process.
type child struct {
	url  string
	cmd  *exec.Cmd
	logs *syncbuf.Buffer
}

// startProcess runs chatd (this test binary's main) as a child process on a
// free port; it is killed when the test ends.
func startProcess(t *testing.T, env map[string]string) *child {
	t.Helper()
	c := childCommand(t, env)
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	return c.start(t)
}

// childCommand is chatd's command as startProcess runs it (on a free
// port), not started; its output is the caller's to set.
func childCommand(t *testing.T, env map[string]string) *child {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env["CHATD_ADDR"] = addr
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRunMain+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return &child{url: "http://" + addr, cmd: cmd, logs: &syncbuf.Buffer{}}
}

// start starts c's command; it is killed when the test ends.
func (c *child) start(t *testing.T) *child {
	t.Helper()
	cmd := c.cmd
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chatd: %v", err)
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("child chatd logs:\n%s", c.logs)
			}
		})
	})
	return c
}

// waitStored polls the REST thread until message id satisfies ok and returns it.
func waitStored(t *testing.T, url, token, convID, id string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		st, body := call(t, "GET", url+"/api/conversations/"+convID, token, nil)
		mustStatus(t, "thread", st, http.StatusOK, body)
		for _, raw := range body["messages"].([]any) {
			if m := raw.(map[string]any); m["id"] == id && ok(m) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s never reached the expected state: %s", id, fmt.Sprint(body["messages"]))
		}
		time.Sleep(20 * time.Millisecond) // polling the store, not synchronising
	}
}
