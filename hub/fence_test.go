package hub

import (
	"context"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// TestClusterSplitOwnerFenced: the owner of an answer is cut off from the
// bus (a network split) but not from the store, and keeps streaming to its
// own tab. Its lease expires; another hub claims the answer and stores it
// interrupted with the last checkpoint's text, and the followers elsewhere
// get done interrupted. When the owner's answer then ends, its late
// checkpoint and its final update must not overwrite the stored result:
// the store keeps interrupted with the checkpoint's text, the owner's tab
// gets done interrupted with the stored length as seq, and no tab and no
// stream gets a second done, whether the split has healed by then or not.
// The owner learns it from its first refused checkpoint and stops the
// answer there.
func TestClusterSplitOwnerFenced(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		heal bool // the owner reaches the bus again before its answer ends
	}{
		{name: "still cut off"},
		{name: "healed", heal: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t, "A", "B", "C")
			a, b := tc.hubs[0], tc.hubs[1]
			conv := tc.conversation(t)
			onA := tc.follow(t, a, "a1", conv.ID)
			onB := tc.follow(t, b, "b1", conv.ID)
			res := tc.send(t, a, nil, conv.ID, "hi")
			run := a.model.next(t)
			run.say(t, "kept ", "text ")
			onB.waitText(t, res.MessageID, "kept text ")
			tc.waitStored(t, res.MessageID, "checkpoint", func(m persistence.Message) bool { return m.Content == "kept text " })

			// A's next checkpoint is held until after the take-over, so
			// that it reaches the store late, as after a split.
			release := a.store.holdUpdates()
			t.Cleanup(release)
			a.crashed = !tt.heal
			tc.mem.Crash("A")
			if st := onB.waitDone(t, res.MessageID); st != "interrupted" {
				t.Fatalf("follower on B: done %q, want interrupted", st)
			}
			claimed := tc.waitStored(t, res.MessageID, "the take-over", func(m persistence.Message) bool {
				return m.Status == persistence.StatusInterrupted
			})
			run.say(t, "after the split ")
			onA.waitText(t, res.MessageID, "kept text after the split ")
			if tt.heal {
				tc.mem.Rejoin("A")
			}
			release()
			// A's held checkpoint is refused: A stops the answer at once
			// (its upstream request is aborted) rather than at its end.
			select {
			case <-run.aborted:
			case <-time.After(waitLimit):
				t.Fatal("A's upstream request was not stopped after the store refused its checkpoint")
			}

			if st := onA.waitDone(t, res.MessageID); st != "interrupted" {
				t.Fatalf("the owner's tab: done %q, want interrupted (what the store and the cluster say)", st)
			}
			stored := tc.message(t, res.MessageID)
			if stored.Status != persistence.StatusInterrupted || stored.Content != "kept text " {
				t.Fatalf("stored %q %q, want interrupted with the checkpoint's text", stored.Status, stored.Content)
			}
			if !stored.UpdatedAt.Equal(claimed.UpdatedAt) || stored.Error != claimed.Error {
				t.Fatalf("the owner's late writes changed the claimed message: %+v, was %+v", stored, claimed)
			}
			for _, s := range []*tab{onA, onB} {
				frames, _ := s.snapshot()
				_, dones, err := answerOf(frames, res.MessageID, 0)
				if err != nil || dones != 1 {
					t.Fatalf("tab %s: %d dones, %v\n%s", s.id, dones, err, dump(frames))
				}
				for _, f := range frames {
					if f.IsDone(res.MessageID) && f.Seq != int64(len(stored.Content)) {
						t.Fatalf("tab %s: done seq %d, want the stored length %d", s.id, f.Seq, len(stored.Content))
					}
				}
			}
			if text, _, _ := answerOf(snapshotFrames(onB), res.MessageID, 0); text != stored.Content {
				t.Fatalf("follower on B has %q, the store %q", text, stored.Content)
			}
			if tt.heal {
				// A's publisher found the answer claimed before its end:
				// it published no second end. (A delta it published
				// before it knew may follow the claimant's done: every
				// follower stops reading a stream at its first done.)
				ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
				defer cancel()
				if err := a.waitPublished(ctx); err != nil {
					t.Fatal(err)
				}
			}
			frames := streamFrames(tc.mem, res.MessageID)
			if n, s := countType(frames, res.MessageID, protocol.TypeDone), countType(frames, res.MessageID, FrameStored); n != 1 || s != 1 {
				t.Fatalf("the answer's stream has %d done and %d stored frames, want 1 each\n%s", n, s, dump(frames))
			}
			tc.waitUnlocked(t, conv.ID)
		})
	}
}

func snapshotFrames(s *tab) []*protocol.Frame {
	frames, _ := s.snapshot()
	return frames
}
