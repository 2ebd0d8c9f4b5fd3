package mongo_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// deletionRecords is the filter of the meta documents recording account
// deletions in progress.
var deletionRecords = bson.D{{Key: "kind", Value: "user_deletion"}}

// reopen opens a second store on e's database, closed with the test.
func reopen(ctx context.Context, t *testing.T, e env) *mongo.Store {
	t.Helper()
	s, err := mongo.Open(ctx, mongo.Options{URI: e.uri, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("open again: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// userWithChat creates a user with a conversation holding a question and
// a streaming answer.
func userWithChat(ctx context.Context, t *testing.T, s persistence.Store, email string) persistence.User {
	t.Helper()
	u := mustUser(ctx, t, s, email)
	c := mustConversation(ctx, t, s, u.ID, "chat")
	mustMessage(ctx, t, s, c, persistence.RoleUser, "question")
	mustMessage(ctx, t, s, c, persistence.RoleAssistant, "")
	return u
}

// rawDelete deletes the documents of coll matching filter, bypassing the store.
func rawDelete(ctx context.Context, t *testing.T, e env, coll string, filter bson.D) {
	t.Helper()
	if _, err := e.raw.Collection(coll).DeleteMany(ctx, filter); err != nil {
		t.Fatal(err)
	}
}

// wantDocs checks how many documents of each collection each user has.
func wantDocs(ctx context.Context, t *testing.T, e env, user string, users, convs, msgs int64) {
	t.Helper()
	for coll, want := range map[string]int64{"users": users, "conversations": convs, "messages": msgs} {
		if n := countDocs(ctx, t, e, coll, userFilter(coll, user)); n != want {
			t.Errorf("%s of user %s: %d documents, want %d", coll, user, n, want)
		}
	}
}

// TestOpenSweepsOrphans: opening a database that a chatd before this one
// wrote (no record of the sweep) deletes, in the background, the
// conversations and messages whose user is gone (a conversation created
// by a request that raced the account's deletion; a message the old last
// sweep missed, its conversation deleted), keeps every other user's, and
// records the sweep, so that the next start does not read everything
// again. A new database records it at once and starts nothing.
func TestOpenSweepsOrphans(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	mongo.WaitCleanUp(e.store) // returns at once: a new database
	swept := bson.D{{Key: "_id", Value: "orphans_swept"}}
	if n := countDocs(ctx, t, e, "meta", swept); n != 1 {
		t.Fatalf("a new database has %d records of the sweep, want 1", n)
	}
	kept := userWithChat(ctx, t, e.store, "kept@x")
	raced := userWithChat(ctx, t, e.store, "raced@x")
	missed := userWithChat(ctx, t, e.store, "missed@x")
	rawDelete(ctx, t, e, "users", userFilter("users", raced.ID))
	rawDelete(ctx, t, e, "users", userFilter("users", missed.ID))
	rawDelete(ctx, t, e, "conversations", userFilter("conversations", missed.ID))
	rawDelete(ctx, t, e, "meta", swept)

	mongo.WaitCleanUp(reopen(ctx, t, e))
	wantDocs(ctx, t, e, kept.ID, 1, 1, 2)
	wantDocs(ctx, t, e, raced.ID, 0, 0, 0)
	wantDocs(ctx, t, e, missed.ID, 0, 0, 0)
	if n := countDocs(ctx, t, e, "meta", swept); n != 1 {
		t.Errorf("%d records of the sweep after it ran, want 1", n)
	}
}

// TestOpenFinishesDeletions: a DeleteUser whose process ended (or whose
// last sweep failed) after the user document was deleted left the user's
// deletion record and documents written meanwhile; the next Open has them
// swept in the background and the record removed. A record whose user is still there (the
// deletion failed before the user went) is left, with the user's data, and
// a DeleteUser of that user completes and removes it.
func TestOpenFinishesDeletions(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	mongo.WaitCleanUp(e.store)
	cut := userWithChat(ctx, t, e.store, "cut@x")
	early := userWithChat(ctx, t, e.store, "early@x")
	for _, u := range []persistence.User{cut, early} {
		oid, err := bson.ObjectIDFromHex(u.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.raw.Collection("meta").InsertOne(ctx, bson.D{
			{Key: "_id", Value: "deletion:" + u.ID}, {Key: "kind", Value: "user_deletion"}, {Key: "owner", Value: oid}})
		if err != nil {
			t.Fatal(err)
		}
	}
	rawDelete(ctx, t, e, "users", userFilter("users", cut.ID))

	s := reopen(ctx, t, e)
	mongo.WaitCleanUp(s)
	wantDocs(ctx, t, e, cut.ID, 0, 0, 0)
	wantDocs(ctx, t, e, early.ID, 1, 1, 2)
	if n := countDocs(ctx, t, e, "meta", deletionRecords); n != 1 {
		t.Errorf("%d deletion records after the open, want early's 1", n)
	}
	if err := s.DeleteUser(ctx, early.ID); err != nil {
		t.Fatal(err)
	}
	wantDocs(ctx, t, e, early.ID, 0, 0, 0)
	if n := countDocs(ctx, t, e, "meta", deletionRecords); n != 0 {
		t.Errorf("%d deletion records after DeleteUser, want 0", n)
	}
}
