package mongo_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// undoCase is a create the store takes back: a message whose
// conversation is gone, a conversation whose owner is gone.
type undoCase struct {
	name string
	coll string                                                         // where the document is written
	want error                                                          // the create's error
	make func(ctx context.Context, s persistence.Store) (string, error) // the create; the id it wrote
}

var undoCases = []undoCase{
	{"message of a conversation gone", "messages", persistence.ErrNotFound,
		func(ctx context.Context, s persistence.Store) (string, error) {
			m := persistence.Message{ID: persistence.NewID(), ConversationID: persistence.NewID(), OwnerID: persistence.NewID(),
				Role: persistence.RoleUser, Content: "hi", Status: persistence.StatusComplete}
			return m.ID, s.InsertMessage(ctx, &m)
		}},
	{"conversation of an owner gone", "conversations", persistence.ErrUnknownOwner,
		func(ctx context.Context, s persistence.Store) (string, error) {
			c := persistence.Conversation{ID: persistence.NewID(), OwnerID: persistence.NewID(), Model: "m"}
			return c.ID, s.CreateConversation(ctx, &c)
		}},
}

// docsWithID counts the documents of coll with _id id.
func docsWithID(ctx context.Context, t *testing.T, e env, coll, id string) int64 {
	t.Helper()
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		t.Fatal(err)
	}
	return countDocs(ctx, t, e, coll, bson.D{{Key: "_id", Value: oid}})
}

// TestUndoIsRetried: a create taken back whose delete fails once (its
// request lost on the way, as a dropped connection or an election loses
// it) tries the delete again and leaves nothing: it was tried once, and
// the message stayed visible to its sender.
func TestUndoIsRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range undoCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var proxy *replyDropper
			ctx, e := newEnvVia(t, nil, viaReplyDropper(t, &proxy))
			held := proxy.holdRequest("delete", false)
			id, err := tc.make(ctx, e.store)
			if !errors.Is(err, tc.want) || strings.Contains(err.Error(), "left stored") {
				t.Fatalf("create: %v, want %v alone", err, tc.want)
			}
			select {
			case <-held:
			default:
				t.Fatal("no delete was lost: the test did not test the retry")
			}
			if n := docsWithID(ctx, t, e, tc.coll, id); n != 0 {
				t.Errorf("%d documents left in %s, want 0", n, tc.coll)
			}
		})
	}
}

// TestUndoFailureIsReported: a create whose undo fails until its bound
// (the server unreachable) says in its error that its document is left,
// besides its own cause; the failure was only logged.
func TestUndoFailureIsReported(t *testing.T) {
	t.Parallel()
	for _, tc := range undoCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var proxy *replyDropper
			ctx, e := newEnvWith(t, mongo.Options{UndoTimeout: 300 * time.Millisecond}, viaReplyDropper(t, &proxy))
			proxy.holdRequest("delete", true) // and every connection cut from then on
			id, err := tc.make(ctx, e.store)
			proxy.unblock()
			if !errors.Is(err, tc.want) {
				t.Fatalf("create: %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), id+" is left stored") {
				t.Errorf("create: %q does not say that %s is left", err, id)
			}
			if n := docsWithID(ctx, t, e, tc.coll, id); n != 1 {
				t.Errorf("%d documents in %s, want the 1 left: the test did not cut the undo off", n, tc.coll)
			}
		})
	}
}
