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

// mongoDeleteSteps are the steps the MongoDB store's DeleteUser reports,
// in order.
var mongoDeleteSteps = []string{persistence.DeleteStepMarked, "messages deleted", "conversations deleted", "user document deleted"}

// deleteCut runs DeleteUser of id with its context cancelled once step
// is done, and fails unless it was cut there.
func deleteCut(ctx context.Context, t *testing.T, s persistence.Store, id, step string) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var steps []string
	ctx = persistence.WithDeleteHook(ctx, func(done string) {
		steps = append(steps, done)
		if done == step {
			cancel()
		}
	})
	if err := s.DeleteUser(ctx, id); !errors.Is(err, context.Canceled) {
		t.Fatalf("DeleteUser cut after %q: got error %v, want context.Canceled", step, err)
	}
	if steps[len(steps)-1] != step {
		t.Fatalf("DeleteUser went on past %q: %q", step, steps)
	}
}

// TestDeleteUserReportsItsSteps: the steps a whole DeleteUser reports are
// mongoDeleteSteps, so that the tests cutting it after each one cover
// every step.
func TestDeleteUserReportsItsSteps(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	u := userWithChat(ctx, t, e.store, "steps@x")
	var steps []string
	hooked := persistence.WithDeleteHook(ctx, func(step string) { steps = append(steps, step) })
	if err := e.store.DeleteUser(hooked, u.ID); err != nil {
		t.Fatal(err)
	}
	if len(steps) != len(mongoDeleteSteps) {
		t.Fatalf("DeleteUser reported %q, want %q", steps, mongoDeleteSteps)
	}
	for i := range steps {
		if steps[i] != mongoDeleteSteps[i] {
			t.Fatalf("DeleteUser reported %q, want %q", steps, mongoDeleteSteps)
		}
	}
}

// TestOpenFinishesCutDeletions: DeleteUser cut off after each of its
// steps (a process that ended there) leaves, in the database, a user
// document that an older server cannot sign in to or take a token of
// (password hash cleared, token version moved) or none; the next Open,
// on any server, finishes every one of them in the background: no
// document of theirs left, no deletion record, another user untouched.
func TestOpenFinishesCutDeletions(t *testing.T) {
	t.Parallel()
	ctx, e := newEnvWith(t, mongo.Options{DeletionSweep: -1}, func(uri string) string { return uri })
	kept := userWithChat(ctx, t, e.store, "kept@x")
	var cut []persistence.User
	for _, step := range mongoDeleteSteps {
		u := userWithChat(ctx, t, e.store, step+"@x")
		deleteCut(ctx, t, e.store, u.ID, step)
		var raw struct {
			PasswordHash string `bson:"password_hash"`
			TokenVersion int64  `bson:"token_version"`
		}
		err := e.raw.Collection("users").FindOne(ctx, userFilter("users", u.ID)).Decode(&raw)
		switch {
		case step == "user document deleted":
			if err == nil {
				t.Fatalf("cut after %q: the user document is there", step)
			}
		case err != nil:
			t.Fatalf("cut after %q: read the user document: %v", step, err)
		case raw.PasswordHash != "" || raw.TokenVersion <= u.TokenVersion:
			t.Errorf("cut after %q: an older server reads password hash %q, token version %d (was %d): still a live account",
				step, raw.PasswordHash, raw.TokenVersion, u.TokenVersion)
		}
		cut = append(cut, u)
	}

	mongo.WaitCleanUp(reopen(ctx, t, e))
	for _, u := range cut {
		wantDocs(ctx, t, e, u.ID, 0, 0, 0)
	}
	wantDocs(ctx, t, e, kept.ID, 1, 1, 2)
	if n := countDocs(ctx, t, e, "meta", deletionRecords); n != 0 {
		t.Errorf("%d deletion records left, want 0", n)
	}
}

// TestDeletionSweepFinishesCutDeletions: a DeleteUser cut off by its own
// time limit, the server still running, is finished by the store's
// periodic look (DeletionSweep) without a restart.
func TestDeletionSweepFinishesCutDeletions(t *testing.T) {
	t.Parallel()
	type result struct {
		n   int
		err error
	}
	swept := make(chan result, 1)
	opts := mongo.WithAfterSweep(mongo.Options{DeletionSweep: 20 * time.Millisecond}, func(n int, err error) {
		select {
		case swept <- result{n, err}:
		default:
		}
	})
	ctx, e := newEnvWith(t, opts, func(uri string) string { return uri })
	kept := userWithChat(ctx, t, e.store, "kept@x")
	u := userWithChat(ctx, t, e.store, "cut@x")
	deleteCut(ctx, t, e.store, u.ID, "messages deleted")
	for {
		select {
		case r := <-swept:
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.n == 0 {
				continue // a look before the cut
			}
			wantDocs(ctx, t, e, u.ID, 0, 0, 0)
			wantDocs(ctx, t, e, kept.ID, 1, 1, 2)
			return
		case <-ctx.Done():
			t.Fatal("no periodic look finished the deletion")
		}
	}
}

// TestDeleteUserFinishesAMarkedUser: calling DeleteUser again after a
// cut (what a retry does) finishes the deletion itself.
func TestDeleteUserFinishesAMarkedUser(t *testing.T) {
	t.Parallel()
	ctx, e := newEnvWith(t, mongo.Options{DeletionSweep: -1}, func(uri string) string { return uri })
	u := userWithChat(ctx, t, e.store, "cut@x")
	deleteCut(ctx, t, e.store, u.ID, persistence.DeleteStepMarked)
	if err := e.store.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	wantDocs(ctx, t, e, u.ID, 0, 0, 0)
	oid, _ := bson.ObjectIDFromHex(u.ID)
	if n := countDocs(ctx, t, e, "meta", bson.D{{Key: "owner", Value: oid}}); n != 0 {
		t.Errorf("%d deletion records left, want 0", n)
	}
}
