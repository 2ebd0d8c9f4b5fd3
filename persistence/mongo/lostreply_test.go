package mongo_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// TestApplyMessageUpdatesLostReply loses the reply to a bulk write for
// real: a proxy between the store and FerretDB passes the update command
// on, drops the server's reply and closes the connection, so the store
// sees a network error for a write that ran. On both fence paths it checks
// that the store reports as failed only the updates that did not apply
// (none when all did), and that once those are retried as the batching
// writer would (all of them on any other error), every answer holds its
// text and reasoning exactly once, and the tail cache knows exactly the
// messages whose checkpoints applied. In the last case one statement also
// fails for real (its message's reasoning is a string): FerretDB stops
// there, so it and the statements after it did not apply.
func TestApplyMessageUpdatesLostReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		ferretDB   bool
		bad        int   // index of a statement that fails, -1 for none
		wantFailed []int // indexes of the updates reported failed
	}{
		{"FerretDB, all applied", true, -1, nil},
		{"MongoDB path, all applied", false, -1, nil},
		{"FerretDB, middle fails", true, 1, []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var proxy *replyDropper
			ctx, e := newEnvVia(t, nil, viaReplyDropper(t, &proxy, "serverSelectionTimeoutMS", "10000")) // a store that lost the server fails soon
			s := e.store
			mongo.SetFerretDB(s, tt.ferretDB)
			mongo.WaitCleanUp(s) // an update of its would meet the armed proxy first
			u := mustUser(ctx, t, s, "a@x")
			c := mustConversation(ctx, t, s, u.ID, "chat")
			var batch []persistence.MessageUpdate
			for range 3 {
				m := mustMessage(ctx, t, s, c, persistence.RoleAssistant, "start ")
				batch = append(batch, persistence.MessageUpdate{ID: m.ID, Append: "more ", AppendReasoning: "why ", At: time.Now()})
			}
			if tt.bad >= 0 {
				setReasoning(ctx, t, e, batch[tt.bad].ID, "not an array")
			}

			dropped := proxy.dropReply("update")
			skipped, err := s.ApplyMessageUpdates(ctx, batch)
			select {
			case <-dropped:
			default:
				t.Fatalf("the proxy lost no reply (skipped %v, err %v)", skipped, err)
			}
			if skipped != nil {
				t.Fatalf("skipped %v after the lost reply, want none (err %v)", skipped, err)
			}
			var partial *persistence.PartialUpdateError
			if errors.As(err, &partial) && len(partial.Refused) > 0 {
				t.Errorf("refused %v after a lost reply, want none: no rejection was seen", partial.Refused)
			}
			retry := failedUpdates(batch, err)
			var want []string
			for _, i := range tt.wantFailed {
				want = append(want, batch[i].ID)
			}
			if !slices.Equal(updateIDs(retry), want) {
				t.Errorf("updates to retry after the lost reply: %v, want %v (err %v)", updateIDs(retry), want, err)
			}
			for _, upd := range batch {
				if cached := mongo.TailCached(s, upd.ID); cached == slices.Contains(want, upd.ID) {
					t.Errorf("message %s: tail cached %v, want it cached when its checkpoint applied", upd.ID, cached)
				}
			}

			if tt.bad >= 0 {
				setReasoning(ctx, t, e, batch[tt.bad].ID, bson.A{})
			}
			if len(retry) > 0 {
				if skipped, err := s.ApplyMessageUpdates(ctx, retry); err != nil || skipped != nil {
					t.Fatalf("retry of the failed updates: skipped %v, err %v", skipped, err)
				}
			}
			for _, upd := range batch {
				m, err := s.Message(ctx, u.ID, upd.ID)
				if err != nil {
					t.Fatal(err)
				}
				if m.Content != "start more " || m.Reasoning != "why " {
					t.Errorf("message %s: content %q, reasoning %q; want each update's text once", upd.ID, m.Content, m.Reasoning)
				}
			}
		})
	}
}

// failedUpdates is what the batching writer retries of batch after
// ApplyMessageUpdates returned err: nothing on success, the updates a
// *persistence.PartialUpdateError names, else every one.
func failedUpdates(batch []persistence.MessageUpdate, err error) []persistence.MessageUpdate {
	var partial *persistence.PartialUpdateError
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &partial):
		return batch
	}
	var failed []persistence.MessageUpdate
	for _, upd := range batch {
		if partial.Failed(upd.ID) {
			failed = append(failed, upd)
		}
	}
	return failed
}

// updateIDs is the message ids of updates, in order.
func updateIDs(updates []persistence.MessageUpdate) []string {
	var out []string
	for _, upd := range updates {
		out = append(out, upd.ID)
	}
	return out
}
