package app

import (
	"context"
	"strings"
	"sync"
	"testing"

	"chatd/llm/fakeai"
	"chatd/persistence"
)

// holdStore is a store whose message updates (the batching writer's
// checkpoints and final updates) can be held back, so a test can make them
// reach the database late.
type holdStore struct {
	persistence.Store
	mu   sync.Mutex
	gate chan struct{} // nil: updates go through
}

// hold makes updates wait until the returned release is called.
func (s *holdStore) hold() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
	return sync.OnceFunc(func() { close(s.gate) })
}

func (s *holdStore) ApplyMessageUpdates(ctx context.Context, u []persistence.MessageUpdate) ([]string, error) {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Store.ApplyMessageUpdates(ctx, u)
}

// TestClusterSplitOwnerFenced (failure table: network split): instance A
// loses NATS but not MongoDB while it streams an answer, and keeps
// streaming it to its own tab. Its lease expires, B takes the answer over
// and stores it interrupted with the last checkpoint's text; the tab on B
// gets done interrupted. A's later writes must not change that: when A's
// answer ends, the store still says interrupted with the checkpoint's
// text, and A's own tab gets done interrupted with the stored length as
// seq, not complete; and A stops the answer (its upstream request) at its
// first refused checkpoint. (A's checkpoints are held while B takes over so that
// none races the take-over: on FerretDB an update racing InterruptMessage
// can win, see persistence/mongo.ApplyMessageUpdates.)
func TestClusterSplitOwnerFenced(t *testing.T) {
	t.Parallel()
	var held *holdStore
	c := newCluster(t, clusterOptions{tweak: func(cfg *Config) {
		if cfg.Bus.InstanceID() == "inst-a0" {
			held = &holdStore{Store: cfg.Store}
			cfg.Store = held
		}
	}})
	a, b := c.nodes[0], c.nodes[1]
	u := b.register(t)
	tabA := a.dial(t, u)
	const prompt = "split [[fake tokens=4000 delay=10ms]]" // 40 s, unless stopped: past a take-over (4 lease TTLs at most)
	ack := tabA.start(prompt)
	tabB := b.dial(t, u)
	seenB := subscribe(tabB, ack.ConversationID)
	seenB = append(seenB, tabB.until(func(f frame) bool { return f.Type == "delta" })...)
	waitFor(t, "a checkpoint", func() bool {
		m, err := b.store.Message(context.Background(), u.ID, ack.MessageID)
		return err == nil && len(m.Content) > 0
	})

	release := held.hold()
	t.Cleanup(release)
	c.crash(0) // A's NATS connection and lease renewal stop; its process, store and tabs go on
	_, doneB := delivered(t, live(append(seenB, tabB.until(isDone(ack.MessageID))...)), ack.MessageID)
	if doneB.Status != "interrupted" {
		t.Fatalf("the tab on B: done %s, want interrupted", doneB.raw)
	}
	claimed, err := b.store.Message(context.Background(), u.ID, ack.MessageID)
	if err != nil || claimed.Status != persistence.StatusInterrupted || int64(len(claimed.Content)) != doneB.Seq {
		t.Fatalf("after the take-over: stored %s with %d bytes (%v); done seq %d", claimed.Status, len(claimed.Content), err, doneB.Seq)
	}
	release() // A's held checkpoint, and then its final update, reach the store

	textA, doneA := delivered(t, live(tabA.until(isDone(ack.MessageID))), ack.MessageID)
	stored, err := b.store.Message(context.Background(), u.ID, ack.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != persistence.StatusInterrupted || stored.Content != claimed.Content || !stored.UpdatedAt.Equal(claimed.UpdatedAt) {
		t.Fatalf("A's late writes changed the answer B ended: stored %s, %d bytes (B stored %d)",
			stored.Status, len(stored.Content), len(claimed.Content))
	}
	if doneA.Status != "interrupted" || doneA.Seq != int64(len(stored.Content)) {
		t.Fatalf("A's tab: done %s, want interrupted with seq %d (the stored length)", doneA.raw, len(stored.Content))
	}
	if !strings.HasPrefix(textA, stored.Content) {
		t.Fatalf("A's tab streamed %d bytes that do not begin with the stored %d", len(textA), len(stored.Content))
	}
	// A stopped the answer at its first refused checkpoint, not at its end.
	if full := fakeai.ExpectedText(fakeai.Config{Tokens: 4000}); len(textA) >= len(full) {
		t.Fatalf("A streamed the whole answer (%d bytes) after the cluster had ended it", len(textA))
	}
}
