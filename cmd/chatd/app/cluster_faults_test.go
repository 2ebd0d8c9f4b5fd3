package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/llm/fakeai"
	"chatd/persistence"
)

// TestClusterDrain (behaviour 7): SIGTERM on A while answers run. A's
// /readyz turns 503 and its tabs are closed with 1001; its answers go on
// streaming, over the bus, to the tabs that follow them on B and to a tab
// that reconnects to C and resumes; they end complete and byte-exact,
// except the one longer than the grace, which ends interrupted.
func TestClusterDrain(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{})
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	u := a.register(t)
	const short = 3
	type run struct {
		ack    frame
		onA    *client
		onB    *client
		seenA  []frame
		seenB  []frame
		tokens int
	}
	var runs []*run
	for i := range short + 1 {
		tokens := 200
		if i == short {
			tokens = 5000 // longer than the grace
		}
		r := &run{onA: a.dial(t, u), onB: b.dial(t, u), tokens: tokens}
		r.ack = r.onA.start(fmt.Sprintf("drain %d [[fake tokens=%d delay=5ms]]", i, tokens))
		r.seenB = subscribe(r.onB, r.ack.ConversationID)
		runs = append(runs, r)
	}
	for _, r := range runs {
		r.seenA = r.onA.until(func(f frame) bool { return f.Type == "delta" && f.MessageID == r.ack.MessageID })
	}

	// The short answers (200 tokens, 1 s) end well within the grace on a
	// loaded machine, where 3 s left them a second or two; the long one
	// (25 s) outlives it.
	grace := 6 * time.Second
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		drained <- a.app.Shutdown(ctx)
	}()
	for _, r := range runs {
		if code := r.onA.closeStatus(); code != websocket.StatusGoingAway {
			t.Fatalf("tab on the draining instance closed with %d, want 1001", code)
		}
	}
	if status, _ := c.readyz(t, 0); status != 503 {
		t.Fatalf("readyz of the draining instance: %d", status)
	}
	// The tab of the first answer reconnects to C and resumes.
	first := runs[0]
	have, _ := delivered(t, live(first.seenA), first.ack.MessageID)
	onC := cc.dial(t, u)
	onC.write(map[string]any{"type": "subscribe", "id": "r", "conversationId": first.ack.ConversationID,
		"messageId": first.ack.MessageID, "lastSeq": len(have)})
	resumed := live(onC.until(isDone(first.ack.MessageID)))
	var rest []frame
	for _, f := range resumed {
		if f.Type == "delta" || f.Type == "done" {
			rest = append(rest, f)
		}
	}
	prefix := frame{Type: "delta", MessageID: first.ack.MessageID, Seq: int64(len(have)), Text: have}
	if text, done := answer(t, append([]frame{prefix}, rest...), first.ack.MessageID); done.Status != "complete" ||
		text != fakeai.ExpectedText(fakeai.Config{Tokens: first.tokens}) {
		t.Fatalf("resumed on C: %d bytes, %s", len(text), done.raw)
	}

	for i, r := range runs {
		text, done := answer(t, live(append(r.seenB, r.onB.until(isDone(r.ack.MessageID))...)), r.ack.MessageID)
		want := "complete"
		if i == short {
			want = "interrupted"
		}
		if done.Status != want {
			t.Fatalf("answer %d ended %s on B, want %s", i, done.raw, want)
		}
		full := fakeai.ExpectedText(fakeai.Config{Tokens: r.tokens})
		if (want == "complete" && text != full) || !strings.HasPrefix(full, text) {
			t.Fatalf("answer %d: B got %d bytes, not the answer", i, len(text))
		}
		stored, err := b.store.Message(context.Background(), u.ID, r.ack.MessageID)
		if err != nil || string(stored.Status) != want || stored.Content != text {
			t.Fatalf("answer %d stored %d bytes (%s), %v; tab got %d", i, len(stored.Content), stored.Status, err, len(text))
		}
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Logf("drain ended with %v (the long answer outlived the grace)", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("the drain never ended")
	}
}

// TestClusterNATSFaults (behaviour 8): one NATS node of three killed
// mid-answer changes nothing a follower sees. All of NATS down: the
// owner's tabs keep their answer, a follower on another instance gets an
// error frame and is closed to reconnect, a send is refused as
// unavailable, /readyz reports the bus; when NATS is back everything works
// again without restarting chatd.
func TestClusterNATSFaults(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{instances: 2})
	a, b := c.nodes[0], c.nodes[1]
	u := a.register(t)
	full := fakeai.ExpectedText(fakeai.Config{Tokens: 400})

	// One node lost.
	onA, onB := a.dial(t, u), b.dial(t, u)
	ack := onA.start("node loss [[fake tokens=400 delay=5ms]]")
	seenB := subscribe(onB, ack.ConversationID)
	seenB = append(seenB, onB.until(func(f frame) bool { return f.Type == "delta" && f.Seq > 100 })...)
	c.nats.Kill(c.nats.LeaderIndex())
	text, done := answer(t, live(append(seenB, onB.until(isDone(ack.MessageID))...)), ack.MessageID)
	if done.Status != "complete" || text != full {
		t.Fatalf("follower across a NATS node loss: %d bytes, %s", len(text), done.raw)
	}
	onA.until(isDone(ack.MessageID))
	for i := range c.nats.Nodes() {
		c.nats.Restart(i)
	}
	c.lockFree(t, ack.ConversationID)

	// Everything down. The answer (7.5 s) outlasts the outage grace (3 s):
	// the owner's tab keeps it past the bus being judged down.
	outage := fakeai.ExpectedText(fakeai.Config{Tokens: 1500})
	ack2 := onA.start("outage [[fake tokens=1500 delay=5ms]]")
	seenA := onA.until(func(f frame) bool { return f.Type == "delta" && f.MessageID == ack2.MessageID })
	follower := b.dial(t, u)
	subscribe(follower, ack2.ConversationID)
	follower.until(func(f frame) bool { return f.Type == "delta" }) // B mirrors the answer
	c.nats.StopAll()
	if got := follower.until(func(f frame) bool { return f.Type == "error" }); got[len(got)-1].Code != "unavailable" {
		t.Fatalf("follower's error frame: %s", got[len(got)-1].raw)
	}
	if code := follower.closeStatus(); code != websocket.StatusGoingAway {
		t.Fatalf("follower closed with %d, want 1001 (reconnect)", code)
	}
	body := c.waitReady(t, 1, 503)
	if !strings.Contains(body, "cluster bus") {
		t.Fatalf("readyz while NATS is down: %s", body)
	}
	onB2 := b.dial(t, u)
	onB2.write(sendFrame("down", "", "refused while down"))
	if f := onB2.until(func(f frame) bool { return f.Type == "error" || f.Type == "ack" }); f[len(f)-1].Code != "unavailable" {
		t.Fatalf("send while NATS is down: %s", f[len(f)-1].raw)
	}
	text, done = answer(t, live(append(seenA, onA.until(isDone(ack2.MessageID))...)), ack2.MessageID)
	if done.Status != "complete" || text != outage {
		t.Fatalf("the owner's tab lost its answer in the outage: %d bytes, %s", len(text), done.raw)
	}

	// Back.
	c.nats.StartAll()
	c.waitReady(t, 0, 200)
	c.waitReady(t, 1, 200)
	c.lockFree(t, ack2.ConversationID)
	stored, err := b.store.Message(context.Background(), u.ID, ack2.MessageID)
	if err != nil || stored.Status != persistence.StatusComplete || stored.Content != outage {
		t.Fatalf("answer of the outage stored as %s (%d bytes), %v", stored.Status, len(stored.Content), err)
	}
	// A tab on A follows a conversation in which B then starts an answer.
	var created struct {
		Conversation struct {
			ID string `json:"id"`
		} `json:"conversation"`
	}
	b.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{"title": "after"}, http.StatusCreated, &created)
	seen := subscribe(onA, created.Conversation.ID)
	onB3 := b.dial(t, u)
	onB3.write(sendFrame("after", created.Conversation.ID, "after the outage [[fake tokens=40]]"))
	ack3 := onB3.expect("ack")
	text, done = answer(t, live(append(seen, onA.until(isDone(ack3.MessageID))...)), ack3.MessageID)
	if done.Status != "complete" || text != fakeai.ExpectedText(fakeai.Config{Tokens: 40}) {
		t.Fatalf("after recovery, a follower on A got %d bytes, %s", len(text), done.raw)
	}
}
