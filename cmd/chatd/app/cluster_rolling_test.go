package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/llm/fakeai"
)

// TestClusterRollingRestart (behaviour 7): the three instances restart one
// at a time (SIGTERM's path: App.Shutdown with a grace period, then a new
// instance) while answers run on all of them. Tabs that lose their
// instance reconnect to another one and resume by messageId+lastSeq. Every
// answer ends complete and every tab's text is byte-exact.
func TestClusterRollingRestart(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{})
	u := c.nodes[0].register(t)
	// Answers on A end first, then B's, then C's: each restart drains some.
	// C's run 12 s (7 s before), past two drains and two restarts of a
	// loaded machine under -race: they must still run at C's restart.
	tokens := []int{150, 400, 1200}
	type started struct {
		conv, msg string
		tokens    int
	}
	var answers []started
	const perInstance = 2
	for i := range 3 {
		for range perInstance {
			tab := c.nodes[i].dial(t, u)
			ack := tab.start(fmt.Sprintf("rolling [[fake tokens=%d delay=10ms]]", tokens[i]))
			answers = append(answers, started{ack.ConversationID, ack.MessageID, tokens[i]})
			tab.c.CloseNow()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	type result struct {
		name       string
		text       string
		done       frame
		reconnects int
		err        error
	}
	results := make(chan result, 2*len(answers))
	var wg sync.WaitGroup
	for i, a := range answers {
		for k := 1; k <= 2; k++ { // followers on the two other instances
			wg.Go(func() {
				text, done, n, err := followAcross(ctx, c, u, a.conv, a.msg, (i/perInstance+k)%3)
				results <- result{fmt.Sprintf("answer %d follower %d", i, k), text, done, n, err}
			})
		}
	}
	for i := range 3 {
		// The longest answers (on C) still run: every restart happens mid-answer.
		if _, running, err := c.buses[(i+1)%3].Running(ctx, answers[len(answers)-1].conv); err != nil || !running {
			t.Fatalf("before restarting instance %d no answer runs (%v): the test proves nothing", i, err)
		}
		c.restart(t, i, 20*time.Second)
	}
	wg.Wait()
	close(results)
	reconnects := 0
	for r := range results {
		reconnects += r.reconnects
		if r.err != nil {
			t.Fatalf("%s: %v", r.name, r.err)
		}
		var want string
		for _, a := range answers {
			if r.done.MessageID == a.msg {
				want = fakeai.ExpectedText(fakeai.Config{Tokens: a.tokens})
			}
		}
		if r.done.Status != "complete" || r.text != want {
			t.Fatalf("%s: %d bytes of %d, done %s", r.name, len(r.text), len(want), r.done.raw)
		}
	}
	// Every follower of a C answer lost its instance once (A or B restarted
	// while it ran), so at least that many reconnects happened mid-answer.
	if reconnects < 2*perInstance {
		t.Fatalf("only %d reconnects: the restarts did not cut the tabs' connections", reconnects)
	}
	t.Logf("%d reconnects across %d followers", reconnects, 2*len(answers))
}

// restart shuts instance i down with grace (as SIGTERM does) and starts a
// new instance in its place.
func (c *cluster) restart(t *testing.T, i int, grace time.Duration) {
	t.Helper()
	e := c.nodes[i]
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := e.app.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown of instance %d: %v", i, err)
	}
	e.srv.Close()
	c.mu.Lock()
	c.generation[i]++
	c.mu.Unlock()
	c.start(t, i, c.uri, c.tweak)
	c.waitHealthy(t, c.buses[i])
}

// url is the current base URL of instance i.
func (c *cluster) url(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].srv.URL
}

// followAcross follows one answer from its start like a browser tab: from
// instance start, and whenever its connection ends, from the next instance,
// resuming with messageId+lastSeq. It returns the text, the done frame and
// how many times it reconnected.
func followAcross(ctx context.Context, c *cluster, u user, convID, msgID string, start int) (string, frame, int, error) {
	var text strings.Builder
	for idx, n := start, 0; ; idx, n = (idx+1)%len(c.nodes), n+1 {
		if ctx.Err() != nil {
			return text.String(), frame{}, n, ctx.Err()
		}
		done, err := followOnce(ctx, c.url(idx), u, convID, msgID, &text)
		if err != nil {
			return text.String(), frame{}, n, err
		}
		if done != nil {
			return text.String(), *done, n, nil
		}
	}
}

// followOnce follows the answer over one connection. It returns the done
// frame, or nil when the connection ended before it.
func followOnce(ctx context.Context, base string, u user, convID, msgID string, text *strings.Builder) (*frame, error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+u.Token)
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, pause(ctx) // the instance is restarting: try the next one
	}
	defer conn.CloseNow()
	conn.SetReadLimit(16 << 20)
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "id": "f", "conversationId": convID,
		"messageId": msgID, "lastSeq": text.Len()})
	if err := conn.Write(ctx, websocket.MessageText, sub); err != nil {
		return nil, nil
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return nil, pause(ctx)
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("undecodable frame %q: %w", data, err)
		}
		f.raw = string(data)
		switch {
		case f.Type == "delta" && f.MessageID == msgID:
			if f.Seq != int64(text.Len()+len(f.Text)) {
				return nil, fmt.Errorf("delta seq %d after %d bytes: gap or duplicate", f.Seq, text.Len())
			}
			text.WriteString(f.Text)
		case f.Type == "done" && f.MessageID == msgID:
			if f.Seq != int64(text.Len()) {
				return nil, fmt.Errorf("done seq %d after %d bytes", f.Seq, text.Len())
			}
			return &f, nil
		case f.Type == "error" && f.Code != "unavailable":
			return nil, fmt.Errorf("error frame %s", f.raw)
		}
	}
}

// pause waits a moment before the next connection attempt, as a tab's
// reconnect backoff does.
func pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(50 * time.Millisecond):
		return nil
	}
}
