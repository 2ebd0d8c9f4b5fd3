package hub

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"chatd/hub/protocol"
)

// recordingHandler is a BusHandler that keeps what it is told.
type recordingHandler struct {
	mu       sync.Mutex
	events   []UserEvent
	controls []ControlKind
	orphans  []AnswerRef
}

func (r *recordingHandler) UserEvent(ev UserEvent) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}
func (r *recordingHandler) Control(_ AnswerRef, k ControlKind) {
	r.mu.Lock()
	r.controls = append(r.controls, k)
	r.mu.Unlock()
}
func (r *recordingHandler) Orphaned(a AnswerRef) {
	r.mu.Lock()
	r.orphans = append(r.orphans, a)
	r.mu.Unlock()
}

func (r *recordingHandler) counts() (events, controls, orphans int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events), len(r.controls), len(r.orphans)
}

// TestMemBusLocks: the lock semantics the hub relies on, as MemBus
// implements them (hub/natsbus has its own tests of the same rules).
func TestMemBusLocks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ref := func(inst, msg string) AnswerRef {
		return AnswerRef{ConversationID: "c", MessageID: msg, UserID: "u", Instance: inst}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, a, b *MemBus)
	}{
		{"acquire names the holder", func(t *testing.T, a, b *MemBus) {
			if _, err := a.Acquire(ctx, ref("A", "m1")); err != nil {
				t.Fatal(err)
			}
			holder, err := b.Acquire(ctx, ref("B", "m2"))
			if !errors.Is(err, ErrLockHeld) || holder != ref("A", "m1") {
				t.Fatalf("second acquire: %+v %v", holder, err)
			}
		}},
		{"release is compare-and-delete", func(t *testing.T, a, b *MemBus) {
			_, _ = a.Acquire(ctx, ref("A", "m1"))
			if err := b.Release(ctx, ref("B", "m1")); err != nil {
				t.Fatal(err)
			}
			if got, ok, _ := b.Running(ctx, "c"); !ok || got != ref("A", "m1") {
				t.Fatalf("a release by another holder freed the lock: %+v %v", got, ok)
			}
			_ = a.Release(ctx, ref("A", "m1"))
			if _, ok, _ := b.Running(ctx, "c"); ok {
				t.Fatal("the holder's release left the lock")
			}
		}},
		{"one claim wins", func(t *testing.T, a, b *MemBus) {
			orphan := ref("X", "m1")
			_, _ = a.c.Join("X").Acquire(ctx, orphan)
			a.c.Crash("X") // its lease expires: its lock is orphaned
			mine, err := a.Claim(ctx, orphan)
			if err != nil || mine != ref("A", "m1") {
				t.Fatalf("first claim: %+v %v", mine, err)
			}
			if _, err := b.Claim(ctx, orphan); !errors.Is(err, ErrLockHeld) {
				t.Fatalf("second claim: %v, want ErrLockHeld", err)
			}
			// The winner's retry (its first reply lost) still wins.
			if again, err := a.Claim(ctx, orphan); err != nil || again != mine {
				t.Fatalf("the winner's claim again: %+v %v", again, err)
			}
		}},
		{"a live owner keeps its lock", func(t *testing.T, a, _ *MemBus) {
			orphan := ref("X", "m1")
			_, _ = a.c.Join("X").Acquire(ctx, orphan)
			if _, err := a.Claim(ctx, orphan); !errors.Is(err, ErrLockHeld) {
				t.Fatalf("claim while the owner's lease is live: %v, want ErrLockHeld", err)
			}
			a.c.Crash("X")
			a.c.Rejoin("X") // renewed between the orphan report and the claim
			if _, err := a.Claim(ctx, orphan); !errors.Is(err, ErrLockHeld) {
				t.Fatalf("claim after the owner renewed its lease: %v, want ErrLockHeld", err)
			}
			if got, _, _ := a.Running(ctx, "c"); got != orphan {
				t.Fatalf("the lock names %+v, want the owner's %+v", got, orphan)
			}
		}},
		{"down refuses", func(t *testing.T, a, _ *MemBus) {
			a.c.SetDown(true)
			if _, err := a.Acquire(ctx, ref("A", "m1")); !errors.Is(err, ErrBusUnavailable) {
				t.Fatalf("acquire while down: %v", err)
			}
			if err := a.Health(ctx); !errors.Is(err, ErrBusUnavailable) {
				t.Fatalf("health while down: %v", err)
			}
			a.c.SetDown(false)
			if err := a.Health(ctx); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewMemCluster()
			tt.run(t, c.Join("A"), c.Join("B"))
		})
	}
}

// TestMemBusStreamsAndEvents: Follow replays from the first frame and
// ends at the done; Broadcast reaches the others but not the sender;
// Control reaches the owner; Crash reports the dead member's locks to
// every live one; a Follow returns ErrBusUnavailable when the bus goes down.
func TestMemBusStreamsAndEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := NewMemCluster()
	a, b, x := c.Join("A"), c.Join("B"), c.Join("X")
	ha, hb, hx := &recordingHandler{}, &recordingHandler{}, &recordingHandler{}
	a.Attach(ha)
	b.Attach(hb)
	x.Attach(hx)

	ans := AnswerRef{ConversationID: "c", MessageID: "m", UserID: "u", Instance: "A"}
	first := &protocol.Frame{Type: protocol.TypeMessage, ConversationID: "c", MessageID: "user-msg"}
	_ = a.Publish(ctx, ans, first)
	got := make(chan *protocol.Frame, 4)
	followed := make(chan error, 1)
	go func() { followed <- b.Follow(ctx, ans, func(f *protocol.Frame) { got <- f }) }()
	if f := <-got; f != first {
		t.Fatalf("first frame %+v", f)
	}
	done := &protocol.Frame{Type: protocol.TypeDone, ConversationID: "c", MessageID: "m"}
	_ = a.Publish(ctx, ans, done)
	if f := <-got; f != done {
		t.Fatalf("second frame %+v", f)
	}
	if err := <-followed; err != nil {
		t.Fatalf("Follow after done: %v", err)
	}

	_ = a.Broadcast(ctx, UserEvent{UserID: "u", Close: &UserClose{Code: protocol.CloseUnauthorized}})
	if ea, _, _ := ha.counts(); ea != 0 {
		t.Fatal("the sender got its own broadcast")
	}
	if eb, _, _ := hb.counts(); eb != 1 {
		t.Fatal("the other member missed the broadcast")
	}
	if err := b.Control(ctx, ans, ControlCancel); err != nil {
		t.Fatal(err)
	}
	if _, ca, _ := ha.counts(); ca != 1 {
		t.Fatal("the owner did not get the control")
	}

	_, _ = x.Acquire(ctx, AnswerRef{ConversationID: "c2", MessageID: "m2", UserID: "u", Instance: "X"})
	c.Crash("X")
	for name, h := range map[string]*recordingHandler{"A": ha, "B": hb} {
		if _, _, o := h.counts(); o != 1 {
			t.Fatalf("%s was told of %d orphans, want 1", name, o)
		}
	}
	if _, _, o := hx.counts(); o != 0 {
		t.Fatal("the dead member was told of its own answers")
	}
	if err := b.Control(ctx, AnswerRef{Instance: "X"}, ControlCancel); !errors.Is(err, ErrBusUnavailable) || !errors.Is(err, ErrInstanceGone) {
		t.Fatalf("control to a dead member: %v", err)
	}

	waiting := make(chan error, 1)
	go func() { waiting <- b.Follow(ctx, AnswerRef{MessageID: "silent"}, func(*protocol.Frame) {}) }()
	c.SetDown(true)
	select {
	case err := <-waiting:
		if !errors.Is(err, ErrBusUnavailable) {
			t.Fatalf("Follow when the bus went down: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Follow did not notice the bus going down")
	}
}

// TestLocalBusPublishesNothing: with the default bus (one process) an
// answer has no outbox: nothing is queued for a bus on the token path.
func TestLocalBusPublishesNothing(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t) // only for its store
	model := newScriptModel()
	h := New(Options{Store: tc.store, Writer: nopWriter{}, Model: model})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	if !h.solo {
		t.Fatal("the default bus is not recognised as a single process")
	}
	conv := tc.conversation(t)
	s := newTab(tc.user.ID, "t")
	res, err := h.Send(context.Background(), s, tc.user.ID, SendRequest{ConversationID: conv.ID, Content: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	run := model.next(t)
	run.say(t, "token")
	c := h.lookup(conv.ID)
	c.mu.Lock()
	out, lock := c.out, c.lock
	c.mu.Unlock()
	if out != nil || lock != nil {
		t.Fatalf("single process: outbox %v lock %v", out, lock)
	}
	close(run.tokens)
	s.waitDone(t, res.MessageID)
}
