package hub

import (
	"context"
	"sync"
	"testing"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// startHeldPair starts a test cluster's instances A, whose broadcasts
// wait while held says so (cutOffBus), and B.
func startHeldPair(t *testing.T) (tc *testCluster, held *cutOffBus, a, b *testHub) {
	tc = newTestCluster(t)
	held = &cutOffBus{}
	a = tc.startWith(t, "A", func(m *MemBus) Bus { held.Bus = m; return held }, nil)
	return tc, held, a, tc.start(t, "B")
}

// cutOffBus is a bus member whose broadcasts wait while held, as those of
// an instance cut off from the bus wait in its outbox.
type cutOffBus struct {
	Bus
	mu      sync.Mutex
	holding bool
	held    []UserEvent
}

func (b *cutOffBus) Broadcast(ctx context.Context, ev UserEvent) error {
	b.mu.Lock()
	if b.holding {
		b.held = append(b.held, ev)
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	return b.Bus.Broadcast(ctx, ev)
}

func (b *cutOffBus) hold() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holding = true
}

// release broadcasts what waits, in order (an outbox flushed once the
// connection is back), and stops holding.
func (b *cutOffBus) release(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	held := b.held
	b.held, b.holding = nil, false
	b.mu.Unlock()
	for _, ev := range held {
		if err := b.Bus.Broadcast(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// framesOf returns the frames of frames telling of conversation id.
func framesOf(frames []*protocol.Frame, id string) []*protocol.Frame {
	var out []*protocol.Frame
	for _, f := range frames {
		if f.Type == protocol.TypeConversation && f.ConversationID == id {
			out = append(out, f)
		}
	}
	return out
}

// TestLateConversationFrameAfterDeletion: instance A, cut off from the
// bus (or not: held false), tells of a conversation (created, or
// updated: a title, a rename) and of another one (renamed "Old");
// meanwhile, through B, the first is deleted and the second renamed
// "New". A tab opened after the deletion (on B, or on C, which started
// after it and never heard of it) gets neither the deleted conversation,
// which would come back to its list for good, nor the older name: the
// conversation as stored now. No clock says whether A's frames came
// late: each is checked.
func TestLateConversationFrameAfterDeletion(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, action, on string
		held             bool // A's frames wait in its outbox until the tab is open
	}{
		{"created, held, new tab on the deleting instance", "created", "B", true},
		{"updated, held, new tab on the deleting instance", "updated", "B", true},
		{"created, held, tab on an instance started since", "created", "C", true},
		{"updated, held, tab on an instance started since", "updated", "C", true},
		{"updated, not held, new tab on the deleting instance", "updated", "B", false},
		{"created, not held, tab on an instance started since", "created", "C", false},
	}
	for _, tcase := range cases {
		t.Run(tcase.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			tc, held, a, b := startHeldPair(t)
			user := tc.user.ID
			gone, renamed := tc.conversation(t), tc.conversation(t)

			on := b
			if tcase.on == "C" {
				on = tc.start(t, "C")
			}
			if tcase.held {
				held.hold()
			}
			rename := func(h *testHub, title string) {
				c, err := tc.store.UpdateConversation(ctx, user, renamed.ID, persistence.ConversationPatch{Title: &title})
				if err != nil {
					t.Fatal(err)
				}
				h.ConversationChanged(user, "updated", c)
			}
			if tcase.held {
				gone.Title = "Otters"
				a.ConversationChanged(user, tcase.action, gone)
				rename(a, "Old")
			}
			rename(b, "New")
			if err := tc.store.DeleteConversation(ctx, user, gone.ID); err != nil {
				t.Fatal(err)
			}
			b.ConversationChanged(user, protocol.ActionDeleted, persistence.Conversation{ID: gone.ID})

			s := newTab(user, "opened-after")
			on.Register(s)
			t.Cleanup(func() { on.Detach(s) })
			if tcase.held {
				held.release(t)
			} else { // told after the deletion, as a title job that stored just before it
				gone.Title = "Otters"
				a.ConversationChanged(user, tcase.action, gone)
				renamed.Title = "Old"
				a.ConversationChanged(user, "updated", renamed)
			}

			// A's frames come in order: the renamed one's last.
			s.waitUntil(t, "the renamed conversation's frame", func(frames []*protocol.Frame, _ protocol.CloseCode) bool {
				return len(framesOf(frames, renamed.ID)) > 0
			})
			frames, _ := s.snapshot()
			if got := framesOf(frames, gone.ID); len(got) > 0 {
				t.Errorf("the deleted conversation came back to the tab:\n%s", dump(got))
			}
			got := framesOf(frames, renamed.ID)
			if title := field(t, got[0], "title"); len(got) != 1 || title != "New" {
				t.Errorf("renamed conversation's frames (title %q, want %q):\n%s", title, "New", dump(got))
			}
		})
	}
}

// TestConversationFrameAfterItsDeletion: a conversation frame told on an
// instance after the conversation's deletion was told there (a title or
// a rename stored just before the delete, told just after it) does not
// reach the tabs: it would put the conversation back in their lists.
func TestConversationFrameAfterItsDeletion(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	a := tc.start(t, "A")
	user := tc.user.ID
	gone, other := tc.conversation(t), tc.conversation(t)
	s := newTab(user, "t1")
	a.Register(s)
	t.Cleanup(func() { a.Detach(s) })

	a.ConversationChanged(user, protocol.ActionDeleted, persistence.Conversation{ID: gone.ID})
	gone.Title = "Otters"
	a.ConversationChanged(user, "updated", gone)
	a.ConversationChanged(user, "created", gone)
	a.ConversationChanged(user, "updated", other)

	frames, _ := s.snapshot()
	if got := framesOf(frames, gone.ID); len(got) != 1 || protocol.ConversationAction(got[0]) != protocol.ActionDeleted {
		t.Errorf("the deleted conversation's frames, want its deletion alone:\n%s", dump(got))
	}
	if got := framesOf(frames, other.ID); len(got) != 1 {
		t.Errorf("another conversation's frames, want one:\n%s", dump(got))
	}
}
