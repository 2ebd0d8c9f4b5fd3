package batch_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	drv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/persistence"
	"chatd/persistence/batch"
	"chatd/persistence/ferret"
	"chatd/persistence/mongo"
)

// TestMongoStoreWrites runs the Writer against the MongoDB store on
// FerretDB, counting writes both at the store boundary and on the
// wire (the driver's command monitor).
func TestMongoStoreWrites(t *testing.T) {
	t.Parallel()
	runStoreWrites(t, func(t *testing.T) (persistence.Store, writeCounter) {
		var writes atomic.Int64
		monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
			if isWriteCommand(e.CommandName) {
				writes.Add(1)
			}
		}}
		s, err := mongo.Open(ctxFor(t), mongo.Options{
			URI:     ferret.Start(t),
			Logger:  slog.New(ferret.NewTestHandler(t, slog.LevelWarn)),
			Monitor: monitor,
		})
		must(t, "open mongo", err)
		t.Cleanup(func() { must(t, "close mongo", s.Close(context.Background())) })
		return s, writes.Load
	})
}

// isWriteCommand reports whether a MongoDB command writes documents.
func isWriteCommand(name string) bool {
	switch name {
	case "insert", "update", "delete", "findAndModify":
		return true
	}
	return false
}

// TestMongoPartialFailure runs the Writer against the MongoDB store on
// FerretDB with one answer whose updates fail for real (its reasoning is
// a string, so pushing to it is a type error): the other answers of the
// same bulk writes are stored with their text exactly once and finish,
// while the broken one is retried; once repaired, it too holds its text
// once.
func TestMongoPartialFailure(t *testing.T) {
	t.Parallel()
	uri := ferret.Start(t)
	f := newFixture(t, func(t *testing.T) (persistence.Store, writeCounter) {
		s, err := mongo.Open(ctxFor(t), mongo.Options{URI: uri, Logger: testLogger(t)})
		must(t, "open mongo", err)
		t.Cleanup(func() { must(t, "close mongo", s.Close(context.Background())) })
		return s, nil
	})
	ctx := ctxFor(t)
	client, err := drv.Connect(options.Client().ApplyURI(uri))
	must(t, "connect", err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	messages := client.Database(mongo.DefaultDatabase).Collection("messages")
	setReasoning := func(id string, v any) {
		oid, err := bson.ObjectIDFromHex(id)
		must(t, "object id", err)
		_, err = messages.UpdateByID(ctx, oid, bson.D{{Key: "$set", Value: bson.D{{Key: "reasoning", Value: v}}}})
		must(t, "set reasoning", err)
	}

	good1, bad, good2 := f.answer(t), f.answer(t), f.answer(t)
	setReasoning(bad.ID, "not an array")
	// Rejected for as long as the test needs: it is repaired, not given up.
	w := batch.New(f.store, batch.Options{Interval: 5 * time.Millisecond, RetryBase: 5 * time.Millisecond,
		RetryMax: 20 * time.Millisecond, MaxRefusals: 1 << 30, Logger: testLogger(t)})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Close(ctx)
	})
	ids := []string{good1.ID, bad.ID, good2.ID}
	for _, id := range ids {
		w.AppendReasoning(id, "thinking ")
		w.Append(id, "answer of "+id+" ")
	}
	eventually(t, "checkpoints retried", func() bool { return w.Stats().Failures >= 2 })
	for _, id := range []string{good1.ID, good2.ID} {
		m, err := f.store.Message(ctx, f.conv.OwnerID, id)
		must(t, "Message", err)
		if want := "answer of " + id + " "; m.Content != want || m.Reasoning != "thinking " {
			t.Errorf("answer %s after the retries: content %q, reasoning %q; want %q and %q, once",
				id, m.Content, m.Reasoning, want, "thinking ")
		}
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, id := range []string{good1.ID, good2.ID} {
		must(t, "Finish a good answer", w.Finish(short, done(id, 2)))
	}
	setReasoning(bad.ID, bson.A{})
	must(t, "Finish the repaired answer", w.Finish(ctx, done(bad.ID, 2)))
	for _, id := range ids {
		f.check(t, id, "answer of "+id+" ", done(id, 2))
		m, err := f.store.Message(ctx, f.conv.OwnerID, id)
		must(t, "Message", err)
		if m.Reasoning != "thinking " {
			t.Errorf("message %s: reasoning %q, want it once", id, m.Reasoning)
		}
	}
}
