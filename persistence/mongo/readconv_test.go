package mongo_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/event"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// readTrap runs a function once, just before the nth read (a find or an
// aggregate) sent after it is armed; the reads the function makes do not
// count towards n. Every read is also recorded in reads (monitor).
type readTrap struct {
	mu   sync.Mutex
	left int
	run  func()
}

func (r *readTrap) monitor(reads *readModes) *event.CommandMonitor {
	counted := reads.monitor()
	return &event.CommandMonitor{Started: func(ctx context.Context, e *event.CommandStartedEvent) {
		counted.Started(ctx, e)
		if e.CommandName != "find" && e.CommandName != "aggregate" {
			return
		}
		r.mu.Lock()
		var fn func()
		if r.left > 0 {
			if r.left--; r.left == 0 {
				fn, r.run = r.run, nil
			}
		}
		r.mu.Unlock()
		if fn != nil {
			fn()
		}
	}}
}

// arm makes fn run just before the nth read from now on.
func (r *readTrap) arm(n int, fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.left, r.run = n, fn
}

// TestReadConversation: persistence.ReadConversation, as a send and a
// regenerate read their conversation (on the primary), reads the
// conversations and the messages once each: the store's
// ConversationWithMessages reads the messages, then the conversation
// unmarked for deletion, which is the check Messages makes after reading
// (convLive). Through Conversation then Messages it read the
// conversation twice. A deletion (its mark, then a step of two messages,
// then cut off) landing just before either read makes the answer
// ErrNotFound, never the conversation with what is left of its history,
// which reading the conversation first would hand over.
func TestReadConversation(t *testing.T) {
	t.Parallel()
	var reads readModes
	var trap readTrap
	opts := mongo.WithDeleteStep(mongo.Options{DeletionSweep: -1, Monitor: trap.monitor(&reads)}, 2)
	ctx, e := newEnvWith(t, opts, func(uri string) string { return uri })
	mongo.WaitCleanUp(e.store)
	s := e.store
	u := mustUser(ctx, t, s, "reader@example.test")
	withMessages := func(title string, n int) persistence.Conversation {
		c := mustConversation(ctx, t, s, u.ID, title)
		for i := range n {
			mustMessage(ctx, t, s, c, persistence.RoleUser, fmt.Sprintf("message %d", i))
		}
		return c
	}

	t.Run("OneReadOfEach", func(t *testing.T) {
		for _, n := range []int{3, 0} {
			c := withMessages("counted", n)
			reads.take("conversations")
			reads.take("messages")
			got, ms, err := persistence.ReadConversation(persistence.WithLatest(ctx), s, u.ID, c.ID)
			if err != nil || got.ID != c.ID || len(ms) != n {
				t.Fatalf("ReadConversation with %d messages = %s, %d messages, %v", n, got.ID, len(ms), err)
			}
			convReads, msgReads := reads.take("conversations"), reads.take("messages")
			if len(convReads) != 1 || len(msgReads) != 1 {
				t.Errorf("ReadConversation with %d messages read conversations %d times and messages %d, want once each",
					n, len(convReads), len(msgReads))
			}
		}
	})

	t.Run("DeletionBetweenReads", func(t *testing.T) {
		for _, before := range []int{1, 2} {
			c := withMessages(fmt.Sprintf("deleted before read %d", before), 5)
			trap.arm(before, func() {
				cut, cancel := context.WithCancel(ctx)
				defer cancel()
				cut = persistence.WithDeleteHook(cut, func(step string) {
					if step != persistence.DeleteStepConversationMarked {
						cancel()
					}
				})
				if err := s.DeleteConversation(cut, u.ID, c.ID); err != nil {
					t.Errorf("DeleteConversation cut after a step: %v", err)
				}
			})
			got, ms, err := persistence.ReadConversation(persistence.WithLatest(ctx), s, u.ID, c.ID)
			if !errors.Is(err, persistence.ErrNotFound) {
				t.Errorf("ReadConversation with the deletion before read %d = %s and %d of its 5 messages, %v; want not found",
					before, got.ID, len(ms), err)
			}
			trap.arm(0, nil)
		}
	})
}
