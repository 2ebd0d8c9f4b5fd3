package app

import (
	"context"
	"testing"
	"time"

	"chatd/persistence"
)

// ackOf reads tab's frames up to the ack or error of frame id and fails
// unless it is an ack.
func ackOf(t *testing.T, tab *client, id string) frame {
	t.Helper()
	fs := readAck(t, tab, id)
	return fs[len(fs)-1]
}

// readAck returns tab's frames up to the ack of frame id, failing on its error.
func readAck(t *testing.T, tab *client, id string) []frame {
	t.Helper()
	fs := tab.until(func(f frame) bool { return (f.Type == "ack" || f.Type == "error") && string(f.ID) == `"`+id+`"` })
	if last := fs[len(fs)-1]; last.Type != "ack" {
		t.Fatalf("frame %s refused: %s", id, last.raw)
	}
	return fs
}

// doneOf reads tab's frames up to the done of answer id and returns it.
func doneOf(tab *client, id string) frame {
	fs := tab.until(isDone(id))
	return fs[len(fs)-1]
}

// goesOn fails unless answer id goes on after the ack of stopper's frame
// (the last of read, tab's frames so far): 1,000 bytes more than the
// answer had when stopper was acked come before any done. A stopper that
// stopped the answer is acked after its done was published, so that done
// comes well before.
func goesOn(t *testing.T, tab *client, read []frame, id, stopper string) {
	t.Helper()
	from := int64(0)
	for _, f := range read {
		if f.Type == "delta" && f.MessageID == id {
			from = f.Seq
		}
	}
	more := tab.until(func(f frame) bool {
		return isDone(id)(f) || f.Type == "delta" && f.MessageID == id && f.Seq > from+1000
	})
	if last := more[len(more)-1]; last.Type == "done" {
		t.Fatalf("%s stopped the running answer: %s", stopper, last.raw)
	}
}

// TestClusterCancelNamesItsAnswer: a cancel on B naming an answer that
// ended (a Stop held through a reconnect) is acknowledged and leaves the
// answer running on A since alone; naming that answer stops it on A. A
// regenerate repeated on C with the key of one started on A starts
// nothing: C is acked with the same ids and follows the answer on A to
// its end.
func TestClusterCancelNamesItsAnswer(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{})
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	u := a.register(t)
	tabA := a.dial(t, u)
	first := tabA.start("hello")
	tabA.until(isDone(first.MessageID))
	conv := first.ConversationID

	tabA.write(sendFrame("s2", conv, "long [[fake tokens=6000 delay=5ms]]"))
	second := ackOf(t, tabA, "s2")
	tabA.until(func(f frame) bool { return f.Type == "delta" && f.MessageID == second.MessageID })

	tabB := b.dial(t, u)
	read := subscribe(tabB, conv)
	read = append(read, tabB.until(func(f frame) bool { return f.Type == "delta" && f.MessageID == second.MessageID })...)
	tabB.write(map[string]any{"type": "cancel", "id": "stale", "conversationId": conv, "messageId": first.MessageID})
	read = append(read, readAck(t, tabB, "stale")...)
	goesOn(t, tabB, read, second.MessageID, "the cancel naming an ended answer")
	tabB.write(map[string]any{"type": "cancel", "id": "named", "conversationId": conv, "messageId": second.MessageID})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.fake.WaitAbort(ctx); err != nil {
		t.Fatalf("the upstream on A was not aborted by the named cancel on B: %v", err)
	}
	if done := doneOf(tabA, second.MessageID); done.Status != "cancelled" {
		t.Fatalf("done %s, want cancelled", done.raw)
	}
	// B's ack and the done it relays from A come in either order.
	acked := false
	for _, f := range tabB.until(isDone(second.MessageID)) {
		acked = acked || f.Type == "ack" && string(f.ID) == `"named"`
		if isDone(second.MessageID)(f) && f.Status != "cancelled" {
			t.Fatalf("done %s, want cancelled", f.raw)
		}
	}
	if !acked {
		ackOf(t, tabB, "named")
	}
	c.lockFree(t, conv)

	requests := c.fake.Requests()
	regen := map[string]any{"type": "regenerate", "id": "r", "conversationId": conv,
		"clientMessageId": "regen-1", "messageId": second.MessageID}
	tabA.write(regen)
	made := ackOf(t, tabA, "r")
	tabA.until(func(f frame) bool { return f.Type == "delta" && f.MessageID == made.MessageID })
	tabC := cc.dial(t, u)
	tabC.write(regen)
	read = readAck(t, tabC, "r")
	if again := read[len(read)-1]; again.MessageID != made.MessageID || again.UserMessageID != made.UserMessageID {
		t.Fatalf("the repeat on C was acked %s, want the ids of %s", again.raw, made.raw)
	}
	// C follows the answer from the ack on: caught up, then live.
	caught := tabC.until(func(f frame) bool { return f.Type == "delta" || isDone(made.MessageID)(f) })
	if last := caught[len(caught)-1]; last.Type == "done" {
		t.Fatalf("the repeated regenerate stopped the running answer: %s", last.raw)
	}
	goesOn(t, tabC, caught, made.MessageID, "the repeated regenerate")
	tabA.write(map[string]any{"type": "cancel", "id": "end", "conversationId": conv, "messageId": made.MessageID})
	for _, tab := range []*client{tabA, tabC} {
		if done := doneOf(tab, made.MessageID); done.Status != "cancelled" {
			t.Fatalf("done %s, want cancelled", done.raw)
		}
	}
	noSecondDone(t, tabC, 100*time.Millisecond)
	if n := c.fake.Requests() - requests; n != 1 {
		t.Fatalf("%d upstream requests for the regenerate and its repeat, want 1", n)
	}
	if m := a.thread(t, u, conv).message(t, made.MessageID); m.ClientMessageID != "regen-1" || m.Status != persistence.StatusCancelled {
		t.Fatalf("stored %+v", m)
	}
}
