package mongo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// TestLateInsertSwept: an insert that failed for the store (a timeout, a
// lost reply) but that the server applied after the conversation's
// deletion had removed its messages and its document leaves a message of
// a conversation that is gone. The next round of the deletion sweep
// removes it. Before, InsertMessage returned its error without a trace,
// and nothing ever removed such a message (sweepOrphans looks at owners,
// once per database).
func TestLateInsertSwept(t *testing.T) {
	t.Parallel()
	late := make(chan func(context.Context) error, 1)
	failing := false
	swept := make(chan error, 16)
	opts := mongo.WithInsertMessage(mongo.Options{DeletionSweep: 20 * time.Millisecond},
		func(ctx context.Context, insert func(context.Context) error) error {
			if !failing {
				return insert(ctx)
			}
			late <- insert // applied later, by the test
			return context.DeadlineExceeded
		})
	opts = mongo.WithAfterSweep(opts, func(_ int, err error) {
		select {
		case swept <- err:
		default:
		}
	})
	ctx, e := newEnvWith(t, opts, func(uri string) string { return uri })
	s := e.store
	u := mustUser(ctx, t, s, "a@x")
	c := mustConversation(ctx, t, s, u.ID, "chat")
	mustMessage(ctx, t, s, c, persistence.RoleUser, "before")

	failing = true
	m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleUser, Content: "late", Status: persistence.StatusComplete}
	if err := s.InsertMessage(ctx, &m); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("insert: %v, want the insert's failure", err)
	}
	if err := s.DeleteConversation(ctx, u.ID, c.ID); err != nil {
		t.Fatalf("delete conversation: %v", err)
	}
	convID, err := bson.ObjectIDFromHex(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	left := func() int64 {
		t.Helper()
		n, err := e.raw.Collection("messages").CountDocuments(ctx, bson.D{{Key: "conversation_id", Value: convID}})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := left(); n != 0 {
		t.Fatalf("%d messages left by the deletion itself", n)
	}
	// The server applies the insert now; acknowledged, it landed (a sweep
	// round, every 20 ms, may remove it before any count here could see it).
	if err := (<-late)(ctx); err != nil {
		t.Fatalf("late insert: %v", err)
	}
	// Two rounds: the first may have started before the late insert.
	for range 2 {
		drain(swept)
		select {
		case err := <-swept:
			if err != nil {
				t.Fatalf("sweep: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("no sweep round")
		}
	}
	if n := left(); n != 0 {
		t.Errorf("%d messages of the deleted conversation left after the sweep", n)
	}
}

// drain empties c.
func drain(c chan error) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}
