package mongo_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
	"chatd/persistence/mongo"
	"chatd/persistence/storetest"
)

// TestDeleteUserLeavesNothing: after DeleteUser no document of the user is
// left in any collection (their streaming answer, with its chunks and the
// split word a chunk boundary cut, included) and the tail cache forgot
// their answer; another user's documents and cached tail stay.
func TestDeleteUserLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	s := e.store
	kept, doomed := mustUser(ctx, t, s, "kept@x"), mustUser(ctx, t, s, "doomed@x")
	answers := map[string]string{}
	for _, u := range []persistence.User{kept, doomed} {
		c := mustConversation(ctx, t, s, u.ID, "chat")
		mustMessage(ctx, t, s, c, persistence.RoleUser, "question")
		a := mustMessage(ctx, t, s, c, persistence.RoleAssistant, "")
		for _, chunk := range []string{"the photo", "synthesis of"} {
			if _, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: a.ID, Append: chunk}}); err != nil {
				t.Fatal(err)
			}
		}
		answers[u.ID] = a.ID
	}
	if n := countDocs(ctx, t, e, "messages", bson.D{{Key: "split_words", Value: "photosynthesis"}}); n != 2 {
		t.Fatalf("%d messages hold the split word, want 2: the fixture is not what this test means", n)
	}
	if err := s.DeleteUser(ctx, doomed.ID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		coll string
		want map[string]int64 // documents per user
	}{
		{"users", map[string]int64{kept.ID: 1, doomed.ID: 0}},
		{"conversations", map[string]int64{kept.ID: 1, doomed.ID: 0}},
		{"messages", map[string]int64{kept.ID: 2, doomed.ID: 0}},
	} {
		for id, want := range tc.want {
			if n := countDocs(ctx, t, e, tc.coll, userFilter(tc.coll, id)); n != want {
				t.Errorf("%s of user %s: %d documents, want %d", tc.coll, id, n, want)
			}
		}
	}
	if n := countDocs(ctx, t, e, "messages", bson.D{{Key: "split_words", Value: "photosynthesis"}}); n != 1 {
		t.Errorf("%d messages hold the split word, want the user kept's 1", n)
	}
	if mongo.TailCached(s, answers[doomed.ID]) || !mongo.TailCached(s, answers[kept.ID]) {
		t.Error("the tail cache kept the deleted user's answer, or lost the other user's")
	}
	if n := countDocs(ctx, t, e, "meta", deletionRecords); n != 0 {
		t.Errorf("%d deletion records left, want 0", n)
	}
}

// userFilter selects the documents of coll that belong to user id.
func userFilter(coll, id string) bson.D {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		panic(err)
	}
	if coll == "users" {
		return bson.D{{Key: "_id", Value: oid}}
	}
	return bson.D{{Key: "owner_id", Value: oid}}
}

// countDocs counts the documents of coll matching filter.
func countDocs(ctx context.Context, t *testing.T, e env, coll string, filter bson.D) int64 {
	t.Helper()
	n, err := e.raw.Collection(coll).CountDocuments(ctx, filter)
	if err != nil {
		t.Fatalf("count %s: %v", coll, err)
	}
	return n
}

// TestOldMarkFinished: a MarkUserDeleting mark left by a deletion cut off
// (on any instance) is finished once older than
// persistence.DeletionGrace, not before (storetest.CheckOldMarkFinished).
func TestOldMarkFinished(t *testing.T) {
	t.Parallel()
	_, e := newEnv(t, nil)
	storetest.CheckOldMarkFinished(t, e.store, func(ctx context.Context, id string, d time.Duration) error {
		return mongo.AgeDeletionMark(ctx, e.store, id, d)
	})
}
