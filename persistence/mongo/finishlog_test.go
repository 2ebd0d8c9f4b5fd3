package mongo_test

import (
	"chatd/internal/syncbuf"
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// TestFinishDeletionsLogsOnlyItsOwn: a cut-off deletion whose user
// document another run deletes while FinishDeletions finishes it (a
// retried DeleteUser, another server's sweep) is counted, but not logged
// as finished by this run: the log said so.
func TestFinishDeletionsLogsOnlyItsOwn(t *testing.T) {
	t.Parallel()
	logs := &syncbuf.Buffer{}
	ctx, e := newEnvWith(t, mongo.Options{DeletionSweep: -1}, func(uri string) string { return uri })
	s, err := mongo.Open(ctx, mongo.Options{URI: e.uri, DeletionSweep: -1, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	u := userWithChat(ctx, t, s, "cut@x")
	deleteCut(ctx, t, s, u.ID, persistence.DeleteStepMarked)
	hooked := persistence.WithDeleteHook(ctx, func(step string) {
		if step != "conversations deleted" {
			return
		}
		if _, err := e.raw.Collection("users").DeleteOne(ctx, userFilter("users", u.ID)); err != nil { // the other run
			t.Errorf("the other run: %v", err)
		}
	})
	n, err := s.FinishDeletions(hooked)
	if err != nil || n != 1 {
		t.Fatalf("FinishDeletions = %d, %v; want 1, nil", n, err)
	}
	if strings.Contains(logs.String(), "finished a cut-off account deletion") {
		t.Errorf("logged as finished by this run:\n%s", logs.String())
	}
	if n := countDocs(ctx, t, e, "users", bson.D{}); n != 0 {
		t.Errorf("%d user documents left, want 0", n)
	}
}
