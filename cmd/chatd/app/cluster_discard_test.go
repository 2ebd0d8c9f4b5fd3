package app

import (
	"testing"
	"time"

	"chatd/hub/natsbus"
	"chatd/persistence"
)

// TestClusterFollowAfterFramesDiscarded: the answer stream keeps 20 frames
// of an answer, far fewer than a long answer publishes (a stream sized
// below docs/scale.md's "Sizing"). A tab on B that starts following an
// answer running on A once its first frames were discarded still gets the
// whole answer from its start, byte-exact, with one done: the text before
// the first frame kept comes from the store's checkpoint (the writer's 50
// ms here, against some 800 ms of frames kept). Before, the tab got an
// error frame and its connection closed, to fail the same way after
// reconnecting until the answer ended.
func TestClusterFollowAfterFramesDiscarded(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{instances: 2, stream: natsbus.StreamLimits{MaxMsgsPerAnswer: 20}})
	a, b := c.nodes[0], c.nodes[1]
	u := a.register(t)
	tabA := a.dial(t, u)
	ack := tabA.start("a long one [[fake tokens=1000 delay=5ms]]")
	deltas := 0
	seenA := tabA.until(func(f frame) bool {
		if f.Type == "delta" && f.MessageID == ack.MessageID {
			deltas++
		}
		return deltas == 30 // each also published: the stream dropped the first ten
	})

	tabB := b.dial(t, u)
	seenB := subscribe(tabB, ack.ConversationID)
	seenB = append(seenB, tabB.until(isDone(ack.MessageID))...)
	textA, doneA := answer(t, live(append(seenA, tabA.until(isDone(ack.MessageID))...)), ack.MessageID)
	textB, doneB := answer(t, live(seenB), ack.MessageID)
	if doneA.Status != "complete" || doneB.Status != "complete" || textA == "" || textB != textA {
		t.Fatalf("A: %s, %d bytes; B: %s, %d bytes", doneA.Status, len(textA), doneB.Status, len(textB))
	}
	messages := 0
	for _, f := range seenB {
		if f.Type == "message" && f.stored(t).ID == ack.MessageID {
			messages++
		}
	}
	if messages != 1 {
		t.Fatalf("B's tab got %d message frames of the answer, want 1", messages)
	}
	noSecondDone(t, tabB, 200*time.Millisecond)
	if stored := a.thread(t, u, ack.ConversationID).message(t, ack.MessageID); stored.Status != persistence.StatusComplete || stored.Content != textA {
		t.Fatalf("stored %d bytes (%s), want %d (complete)", len(stored.Content), stored.Status, len(textA))
	}
}

// TestClusterFrameLargerThanStream: the answer stream takes frames of at
// most 1 KiB (its max_msg_size, below the NATS servers' max_payload), and
// an answer running on A sends its text in deltas of about 1.2 KB (a
// second of coalescing): JetStream refuses them in their
// acknowledgements. The answer still ends on A and, with the stored text
// and one done, on a tab following it on B, and the conversation is free
// for the next send. Before, the refusal was
// taken for NATS being unavailable and retried forever: no done reached
// B, and the conversation stayed locked.
func TestClusterFrameLargerThanStream(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{instances: 2, stream: natsbus.StreamLimits{MaxMsgSize: 1 << 10},
		tweak: func(cfg *Config) { cfg.Hub.CoalesceInterval = time.Second }})
	a, b := c.nodes[0], c.nodes[1]
	u := a.register(t)
	tabA := a.dial(t, u)
	ack := tabA.start("a long one [[fake tokens=1500 delay=1ms]]") // 1.5 s or more (was 0.6): still running when B subscribes
	tabB := b.dial(t, u)
	seenB := subscribe(tabB, ack.ConversationID)
	seenB = append(seenB, tabB.until(isDone(ack.MessageID))...)
	textA, doneA := answer(t, live(tabA.until(isDone(ack.MessageID))), ack.MessageID)
	textB, doneB := answer(t, live(seenB), ack.MessageID)
	stored := a.thread(t, u, ack.ConversationID).message(t, ack.MessageID)
	if doneA.Status != "complete" || doneB.Status != "complete" || len(textA) < 2<<10 || textB != stored.Content {
		t.Fatalf("A: %s, %d bytes; B: %s, %d bytes; stored %d bytes", doneA.Status, len(textA), doneB.Status, len(textB),
			len(stored.Content))
	}
	tabB.write(sendFrame("s2", ack.ConversationID, "again [[fake tokens=3]]"))
	next := tabB.until(func(f frame) bool { return f.Type == "ack" || f.Type == "error" })
	if f := next[len(next)-1]; f.Type != "ack" {
		t.Fatalf("the next send in the conversation: %s", f.raw)
	}
}
