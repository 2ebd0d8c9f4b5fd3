package batch_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/event"

	"chatd/persistence"
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
