package mongo_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// TestReadPageRoundTrips: persistence.ReadPage and ReadOutline, as a
// conversation's first page (GET /api/conversations/:id) and an export's
// start read it, read the conversations once: the store's
// ConversationWithPage and ConversationWithOutline read the messages (the
// page's first message then the page, for a page before a message), then
// the conversation not being deleted, which is the check MessagePage and
// MessageOutline make after reading (convLive). Through Conversation then
// MessagePage or MessageOutline they read the conversation twice: 3 round
// trips for a first page or an outline, 4 for a page before a message,
// where they now take 2 and 3. A deletion (its mark, then a step of two
// messages, then cut off) landing just before any of the reads makes the
// answer ErrNotFound.
func TestReadPageRoundTrips(t *testing.T) {
	t.Parallel()
	var reads readModes
	var trap readTrap
	opts := mongo.WithDeleteStep(mongo.Options{DeletionSweep: -1, Monitor: trap.monitor(&reads)}, 2)
	ctx, e := newEnvWith(t, opts, func(uri string) string { return uri })
	mongo.WaitCleanUp(e.store)
	s := e.store
	u := mustUser(ctx, t, s, "pager@example.test")
	withMessages := func(title string, n int) (persistence.Conversation, []persistence.Message) {
		c := mustConversation(ctx, t, s, u.ID, title)
		var ms []persistence.Message
		for i := range n {
			ms = append(ms, mustMessage(ctx, t, s, c, persistence.RoleUser, fmt.Sprintf("message %d", i)))
		}
		return c, ms
	}
	type read struct {
		name     string
		msgReads int // the reads of messages it makes
		read     func(ctx context.Context, c persistence.Conversation, ms []persistence.Message) (int, error)
	}
	cases := []read{
		{"first page", 1, func(ctx context.Context, c persistence.Conversation, _ []persistence.Message) (int, error) {
			_, p, err := persistence.ReadPage(ctx, s, u.ID, c.ID, persistence.PageQuery{Limit: 2})
			return len(p.Messages), err
		}},
		{"page before a message", 2, func(ctx context.Context, c persistence.Conversation, ms []persistence.Message) (int, error) {
			if len(ms) == 0 {
				return 0, nil
			}
			_, p, err := persistence.ReadPage(ctx, s, u.ID, c.ID, persistence.PageQuery{Before: ms[len(ms)-1].ID, Limit: 2})
			return len(p.Messages), err
		}},
		{"last page", 2, func(ctx context.Context, c persistence.Conversation, ms []persistence.Message) (int, error) {
			if len(ms) == 0 {
				return 0, nil
			}
			_, p, err := persistence.ReadPage(ctx, s, u.ID, c.ID, persistence.PageQuery{Before: ms[0].ID})
			return len(p.Messages), err
		}},
		{"outline", 1, func(ctx context.Context, c persistence.Conversation, _ []persistence.Message) (int, error) {
			_, ms, err := persistence.ReadOutline(ctx, s, u.ID, c.ID)
			return len(ms), err
		}},
	}

	t.Run("OneReadOfTheConversation", func(t *testing.T) {
		for _, n := range []int{3, 0} {
			c, ms := withMessages("counted", n)
			for _, r := range cases {
				if n == 0 && r.msgReads == 2 {
					continue // no message to page before
				}
				reads.take("conversations")
				reads.take("messages")
				if _, err := r.read(persistence.WithLatest(ctx), c, ms); err != nil {
					t.Fatalf("%s of %d messages: %v", r.name, n, err)
				}
				convReads, msgReads := reads.take("conversations"), reads.take("messages")
				if len(convReads) != 1 || len(msgReads) != r.msgReads {
					t.Errorf("%s of %d messages read conversations %d times and messages %d, want once and %d times",
						r.name, n, len(convReads), len(msgReads), r.msgReads)
				}
			}
		}
	})

	t.Run("DeletionBetweenReads", func(t *testing.T) {
		for _, r := range cases {
			for before := 1; before <= r.msgReads+1; before++ {
				c, ms := withMessages(fmt.Sprintf("%s: deleted before read %d", r.name, before), 5)
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
				got, err := r.read(persistence.WithLatest(ctx), c, ms)
				if !errors.Is(err, persistence.ErrNotFound) {
					t.Errorf("%s with the deletion before read %d = %d of its messages, %v; want not found", r.name, before, got, err)
				}
				trap.arm(0, nil)
			}
		}
	})
}
