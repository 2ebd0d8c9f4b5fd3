package mongo_test

import (
	"context"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence/mongo"
)

// TestEmailRewriteFailureIsSkippedAndRetried: an account whose email the
// one-time rewrite cannot write is logged and skipped, the others are
// rewritten, Open succeeds, and the pass is not recorded done, so the
// next Open runs it again and records it. Before, such an error failed
// Open (the server never started).
func TestEmailRewriteFailureIsSkippedAndRetried(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	failing := mustUser(ctx, t, e.store, "νικος@example.gr")
	other := mustUser(ctx, t, e.store, "ελενης@example.gr")
	if err := mongo.UndoEmailRewrite(ctx, e.store); err != nil {
		t.Fatal(err)
	}
	marked := func() bool {
		t.Helper()
		n, err := e.raw.Collection("meta").CountDocuments(ctx, bson.D{{Key: "_id", Value: "emails_normalized"}})
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	emailOf := func(id string) string {
		t.Helper()
		u, err := e.store.UserByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return u.Email
	}
	open := func(opts mongo.Options) {
		t.Helper()
		opts.URI, opts.Logger = e.uri, testLogger(t)
		s, err := mongo.Open(ctx, opts)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if !mongo.EmailsRewritten(s) {
			t.Error("open did not run the rewrite of emails")
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	open(mongo.WithFailEmailRewrite(mongo.Options{DeletionSweep: -1}, func(email string) error {
		if email == failing.Email {
			return errors.New("injected write failure")
		}
		return nil
	}))
	if got := emailOf(failing.ID); got != "νικος@example.gr" {
		t.Errorf("the failing account's email = %q, want it left as stored", got)
	}
	if got := emailOf(other.ID); got != "ελενησ@example.gr" {
		t.Errorf("the other account's email = %q, want it rewritten past the failure", got)
	}
	if marked() {
		t.Fatal("the rewrite was recorded done although an account failed")
	}
	open(mongo.Options{DeletionSweep: -1})
	if got := emailOf(failing.ID); got != "νικοσ@example.gr" {
		t.Errorf("after the next open, the failing account's email = %q, want it rewritten", got)
	}
	if !marked() {
		t.Error("the rewrite was not recorded done after a pass without failures")
	}
}

// TestEmailRewriteOutlastsOpenContext: a rewrite that runs past what Open's
// context allows (bounded by CHATD_DB_CONNECT_TIMEOUT) fails nothing:
// Open succeeds, and the pass, bounded on its own, is recorded done.
// Before, the look for unfinished work ran after it on Open's context,
// so a long first pass after the upgrade failed the start-up as "no
// MongoDB answered".
func TestEmailRewriteOutlastsOpenContext(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	mustUser(ctx, t, e.store, "νικος@example.gr")
	if err := mongo.UndoEmailRewrite(ctx, e.store); err != nil {
		t.Fatal(err)
	}
	openCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := mongo.WithFailEmailRewrite(mongo.Options{DeletionSweep: -1}, func(string) error {
		cancel() // the pass outlasts Open's context
		return nil
	})
	opts.URI, opts.Logger = e.uri, testLogger(t)
	s, err := mongo.Open(openCtx, opts)
	if err != nil {
		t.Fatalf("open with a rewrite that outlasted its context: %v", err)
	}
	if !mongo.EmailsRewritten(s) {
		t.Error("open did not run the rewrite of emails")
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := e.raw.Collection("meta").CountDocuments(ctx, bson.D{{Key: "_id", Value: "emails_normalized"}})
	if err != nil || n != 1 {
		t.Errorf("the rewrite's record: %d, %v; want it recorded done", n, err)
	}
}
