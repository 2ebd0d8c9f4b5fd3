package hub

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"chatd/persistence"
)

// TestActiveAnswerOwnerOnly: the running answer is named to its owner on
// the instance running it, on one mirroring it and on one that only asks
// the bus; anyone else is told nothing runs.
func TestActiveAnswerOwnerOnly(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B", "C")
	a, b, c := tc.hubs[0], tc.hubs[1], tc.hubs[2]
	conv := tc.conversation(t)
	onA := tc.follow(t, a, "a1", conv.ID)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, onA, conv.ID, "hello")
	run := a.model.next(t)
	run.say(t, "x")
	onB.waitText(t, res.MessageID, "x")
	for _, h := range []*testHub{a, b, c} {
		if got := h.ActiveAnswer(t.Context(), tc.user.ID, conv.ID); got != res.MessageID {
			t.Errorf("hub %s: owner told %q, want %s", h.name, got, res.MessageID)
		}
		if got := h.ActiveAnswer(t.Context(), "another-user", conv.ID); got != "" {
			t.Errorf("hub %s: another user told %q", h.name, got)
		}
	}
	close(run.tokens)
	onA.waitDone(t, res.MessageID)
}

// TestActiveAnswerEndsWithCaller: on a hub whose bus hangs, ActiveAnswer
// returns "" as soon as the caller's context ends, not after the bus
// timeout (5 s) whatever the request's own bound. It used to ask the bus
// within a context of its own.
func TestActiveAnswerEndsWithCaller(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A")
	hang := &hangingLookupBus{asked: make(chan context.Context, 1)}
	b := tc.startWith(t, "B", func(m *MemBus) Bus { hang.MemBus = m; return hang }, nil)
	conv := tc.conversation(t)
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan string, 1)
	go func() { got <- b.ActiveAnswer(ctx, tc.user.ID, conv.ID) }()
	var lookup context.Context
	select {
	case lookup = <-hang.asked:
	case <-time.After(waitLimit):
		t.Fatal("ActiveAnswer did not ask the bus")
	}
	cancel()
	// A context derived from the caller's ends within cancel (a bound of
	// busTimeout/2 on the answer, before, failed on a stall of the
	// machine); one of its own would end busTimeout later.
	if lookup.Err() == nil {
		t.Fatal("the bus lookup's context outlives its caller's")
	}
	select {
	case id := <-got:
		if id != "" {
			t.Fatalf("ActiveAnswer on a hung bus = %q, want \"\"", id)
		}
	case <-time.After(waitLimit):
		t.Fatal("ActiveAnswer still waits for the hung bus after its caller's context ended")
	}
}

// hangingLookupBus is a MemBus whose lookups of a running answer hang
// until their context ends; asked gets the first lookup's context.
type hangingLookupBus struct {
	*MemBus
	asked chan context.Context
}

func (b *hangingLookupBus) Running(ctx context.Context, _ string) (AnswerRef, bool, error) {
	select {
	case b.asked <- ctx:
	default:
	}
	<-ctx.Done()
	return AnswerRef{}, false, fmt.Errorf("read lock: %w", ctx.Err())
}

// TestActiveAnswerForeignCostsAsUnknown: another user asking ActiveAnswer
// about a conversation this instance follows, or runs an answer of, asks
// the bus as often as for an id that does not exist, and is told nothing
// runs. It used to answer a foreign id held here at once, with no bus
// lookup, so the time saved told a live conversation from an unknown id.
func TestActiveAnswerForeignCostsAsUnknown(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A")
	counting := &countingLookupBus{}
	b := tc.startWith(t, "B", func(m *MemBus) Bus { counting.MemBus = m; return counting }, nil)
	followed := tc.conversation(t)
	tc.follow(t, b, "b1", followed.ID)
	running := tc.conversation(t)
	onB := tc.follow(t, b, "b2", running.ID)
	res := tc.send(t, b, onB, running.ID, "hello")
	run := b.model.next(t)
	run.say(t, "x")
	onB.waitText(t, res.MessageID, "x")
	ids := []struct{ name, id string }{
		{"unknown", persistence.NewID()},
		{"followed", followed.ID},
		{"running", running.ID},
	}
	for _, tt := range ids {
		before := counting.calls.Load()
		if got := b.ActiveAnswer(t.Context(), "another-user", tt.id); got != "" {
			t.Errorf("%s: another user told %q", tt.name, got)
		}
		if n := counting.calls.Load() - before; n != 1 {
			t.Errorf("%s id: %d bus lookups, want 1 as for any id", tt.name, n)
		}
	}
	close(run.tokens)
	onB.waitDone(t, res.MessageID)
}

// countingLookupBus is a MemBus that counts its lookups of a running answer.
type countingLookupBus struct {
	*MemBus
	calls atomic.Int64
}

func (b *countingLookupBus) Running(ctx context.Context, convID string) (AnswerRef, bool, error) {
	b.calls.Add(1)
	return b.MemBus.Running(ctx, convID)
}
