package mongo_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	drv "go.mongodb.org/mongo-driver/v2/mongo"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// TestApplyMessageUpdatesPartialFailure makes one statement of a bulk
// write fail for real (its message's reasoning is a string, so $push on it
// is a type error) and checks, on both fence paths and wherever the bad
// statement sits in the batch, that the store reports only that message
// as failed (persistence.PartialUpdateError) and that, once the failed
// update alone is retried as the contract says, every answer holds its
// text exactly once. FerretDB v1 stops at the failing statement and
// reports it at index 0, so the statements after it did not run: they
// must be reported failed, not taken as applied.
func TestApplyMessageUpdatesPartialFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ferretDB bool
		bad      int // index of the failing statement among three
	}{
		{"FerretDB, first fails", true, 0},
		{"FerretDB, middle fails", true, 1},
		{"FerretDB, last fails", true, 2},
		{"MongoDB path, first fails", false, 0},
		{"MongoDB path, middle fails", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, e := newEnv(t, nil)
			s := e.store
			mongo.SetFerretDB(s, tt.ferretDB)
			u := mustUser(ctx, t, s, "a@x")
			c := mustConversation(ctx, t, s, u.ID, "chat")
			var batch []persistence.MessageUpdate
			for i := range 3 {
				m := mustMessage(ctx, t, s, c, persistence.RoleAssistant, "start ")
				upd := persistence.MessageUpdate{ID: m.ID, Append: "more ", AppendReasoning: "why ", At: time.Now()}
				if i == 2 {
					upd.Status, upd.FinishReason = persistence.StatusComplete, "stop"
				}
				batch = append(batch, upd)
			}
			bad := batch[tt.bad].ID
			setReasoning(ctx, t, e, bad, "not an array")

			failedOnly := checkPartial(ctx, t, s, batch, bad)
			checkPartial(ctx, t, s, failedOnly, bad) // still broken: fails alone again
			setReasoning(ctx, t, e, bad, bson.A{})
			if skipped, err := s.ApplyMessageUpdates(ctx, failedOnly); err != nil || skipped != nil {
				t.Fatalf("retry of the failed update after the repair: skipped %v, err %v", skipped, err)
			}
			for _, upd := range batch {
				m, err := s.Message(ctx, u.ID, upd.ID)
				if err != nil {
					t.Fatal(err)
				}
				if m.Content != "start more " || m.Reasoning != "why " {
					t.Errorf("message %s (bad %v): content %q, reasoning %q; want each update's text once",
						upd.ID, upd.ID == bad, m.Content, m.Reasoning)
				}
				if want := cmpStatus(upd); m.Status != want {
					t.Errorf("message %s: status %s, want %s", upd.ID, m.Status, want)
				}
			}
		})
	}
}

// checkPartial applies batch, expects it to fail for message bad alone,
// and returns the updates the caller must retry: those of the failed ids.
func checkPartial(ctx context.Context, t *testing.T, s *mongo.Store, batch []persistence.MessageUpdate, bad string) []persistence.MessageUpdate {
	t.Helper()
	skipped, err := s.ApplyMessageUpdates(ctx, batch)
	var partial *persistence.PartialUpdateError
	if !errors.As(err, &partial) {
		t.Fatalf("ApplyMessageUpdates with one bad statement: skipped %v, err %v; want a *PartialUpdateError", skipped, err)
	}
	if !slices.Equal(partial.IDs, []string{bad}) || skipped != nil {
		t.Fatalf("failed %v, skipped %v; want failed [%s] only (err %v)", partial.IDs, skipped, bad, err)
	}
	if !slices.Equal(partial.Refused, []string{bad}) {
		t.Errorf("refused %v, want [%s]: the server rejected its statement", partial.Refused, bad)
	}
	var bwe drv.BulkWriteException
	if !errors.As(partial.Err, &bwe) {
		t.Errorf("partial failure's cause %v is not the bulk write's error", partial.Err)
	}
	var retry []persistence.MessageUpdate
	for _, upd := range batch {
		if partial.Failed(upd.ID) {
			retry = append(retry, upd)
		}
	}
	return retry
}

// setReasoning overwrites message id's reasoning field behind the store's back.
func setReasoning(ctx context.Context, t *testing.T, e env, id string, v any) {
	t.Helper()
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.raw.Collection("messages").UpdateByID(ctx, oid, bson.D{{Key: "$set", Value: bson.D{{Key: "reasoning", Value: v}}}})
	if err != nil {
		t.Fatalf("set reasoning of %s: %v", id, err)
	}
}

// cmpStatus is the status an update leaves.
func cmpStatus(upd persistence.MessageUpdate) persistence.Status {
	if upd.Status != "" {
		return upd.Status
	}
	return persistence.StatusStreaming
}
