package mongo_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/persistence/ferret"
	"chatd/persistence/mongo"
	"chatd/persistence/storetest"
)

// dbCounter names a fresh database per store, so contract sub-tests can
// share one FerretDB per group without sharing data.
var dbCounter atomic.Int64

// openOn opens a store on database db of uri; the suite closes it.
func openOn(t *testing.T, uri, db string) persistence.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := mongo.Open(ctx, mongo.Options{
		URI:      uri,
		Database: db,
		Logger:   slog.New(ferret.NewTestHandler(t, slog.LevelWarn)),
		// No periodic deletion sweep: the suite calls FinishDeletions itself.
		DeletionSweep: -1,
	})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// TestContract runs the shared store contract suite on FerretDB, one
// FerretDB per sub-test.
func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) persistence.Store {
		takeFerretSlot(t)
		return openOn(t, ferret.Start(t), fmt.Sprint("contract", dbCounter.Add(1)))
	})
}

// TestContractReopen checks data survives closing and reopening the store.
func TestContractReopen(t *testing.T) {
	t.Parallel()
	storetest.RunReopen(t, func(t *testing.T) (persistence.Store, func(t *testing.T) persistence.Store) {
		takeFerretSlot(t)
		uri := ferret.Start(t)
		db := fmt.Sprint("reopen", dbCounter.Add(1))
		return upgradable{openOn(t, uri, db).(*mongo.Store)}, func(t *testing.T) persistence.Store {
			return upgradable{openOn(t, uri, db).(*mongo.Store)}
		}
	})
}

// TestContractClocks checks the order of what is written after data a
// clock ahead of this process's stored (another instance's).
func TestContractClocks(t *testing.T) {
	t.Parallel()
	storetest.RunClocks(t, func(t *testing.T) (persistence.Store, func(t *testing.T, d time.Duration)) {
		takeFerretSlot(t)
		s := openOn(t, ferret.Start(t), fmt.Sprint("clocks", dbCounter.Add(1))).(*mongo.Store)
		return s, func(t *testing.T, d time.Duration) {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := mongo.ShiftTimes(ctx, s, d); err != nil {
				t.Fatalf("shift the stored times: %v", err)
			}
		}
	})
}

// upgradable is a store that can be taken back to before its one-time
// rewrite of emails (storetest.EmailUpgrade).
type upgradable struct{ *mongo.Store }

func (u upgradable) UndoEmailRewrite(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := mongo.UndoEmailRewrite(ctx, u.Store); err != nil {
		t.Fatal(err)
	}
}

func (u upgradable) EmailsRewritten() bool { return mongo.EmailsRewritten(u.Store) }
