package mongo_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"

	"chatd/persistence/mongo"
)

// TestSweepOrphansClosesItsCursorWhenCut: the sweep of what deleted users
// left, cut off (its context ended, as at Close) while it reads the
// owners batch after batch, still closes its cursor on the server
// (killCursors), rather than leaving it open there until the server's
// idle timeout. Before, it closed the cursor with its ended context, and
// the driver sent nothing.
func TestSweepOrphansClosesItsCursorWhenCut(t *testing.T) {
	t.Parallel()
	var (
		cut    atomic.Pointer[context.CancelFunc]
		killed atomic.Int32
	)
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		switch e.CommandName {
		case "getMore":
			if c := cut.Swap(nil); c != nil {
				(*c)()
			}
		}
	}, Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
		if e.CommandName == "killCursors" {
			killed.Add(1)
		}
	}}
	ctx, e := newEnv(t, monitor)
	mongo.WaitCleanUp(e.store)
	docs := make([]any, 300) // more owners than the first batch of a cursor (101)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "owner_id", Value: bson.NewObjectID()},
			{Key: "title", Value: "t"}, {Key: "updated_at", Value: time.Now()}}
	}
	if _, err := e.raw.Collection("conversations").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	sweepCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cut.Store(&cancel)
	if err := mongo.SweepOrphans(sweepCtx, e.store); !errors.Is(err, context.Canceled) {
		t.Fatalf("sweep cut off: %v, want context.Canceled", err)
	}
	if cut.Load() != nil {
		t.Fatal("the sweep read no second batch: the test cut nothing")
	}
	if n := killed.Load(); n == 0 {
		t.Fatal("the cut sweep left its cursor open on the server (no killCursors)")
	}
}
