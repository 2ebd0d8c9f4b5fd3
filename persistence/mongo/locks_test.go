package mongo

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// held reports how many stripes of l are taken.
func held(l *docLocks) int {
	n := 0
	for _, s := range l.stripes {
		n += len(s)
	}
	return n
}

func TestDocLocksOrderAndRelease(t *testing.T) {
	t.Parallel()
	l := newDocLocks()
	l.ferretDB = true
	ctx := context.Background()
	a, b := newObjectID(), newObjectID()
	unlock, err := l.lock(ctx, a, b, a) // duplicates and shared stripes lock once
	if err != nil {
		t.Fatal(err)
	}
	if n := held(&l); n != 2 {
		t.Fatalf("%d stripes held, want 2", n)
	}
	unlock()
	done := make(chan error, 1)
	go func() {
		unlock, err := l.lockAll(ctx)
		if err != nil {
			done <- err
			return
		}
		unlock()
		unlock, err = l.lock(ctx, b)
		if err == nil {
			unlock()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a lock was not released")
	}
	if n := held(&l); n != 0 {
		t.Fatalf("%d stripes held after every unlock", n)
	}
}

// TestDocLockWaitEndsWithContext: a wait for a stripe someone holds ends
// when the caller's context does, with an error wrapping the context's,
// and gives back the stripes it took before.
func TestDocLockWaitEndsWithContext(t *testing.T) {
	t.Parallel()
	l := newDocLocks()
	l.ferretDB = true
	a, b := newObjectID(), newObjectID()
	if stripe(a) > stripe(b) {
		a, b = b, a
	}
	if stripe(a) == stripe(b) {
		t.Fatal("consecutive ids share a stripe")
	}
	release, err := l.lock(context.Background(), b) // b's is taken after a's
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, lockFn := range []struct {
		name string
		fn   func(context.Context) (func(), error)
	}{
		{"lock", func(ctx context.Context) (func(), error) { return l.lock(ctx, a, b) }},
		{"writeLock", func(ctx context.Context) (func(), error) { return l.writeLock(ctx, a, b) }},
		{"lockAll", l.lockAll},
	} {
		t.Run(lockFn.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			unlock, err := lockFn.fn(ctx)
			if !errors.Is(err, context.Canceled) || unlock != nil {
				t.Fatalf("got %v (unlock %v), want a context.Canceled error", err, unlock != nil)
			}
			if n := held(&l); n != 1 {
				t.Fatalf("%d stripes held after the wait ended, want 1 (the one held before)", n)
			}
		})
	}
}

// TestDocLocksOffOutsideFerretDB: on MongoDB (a store Open did not find
// FerretDB on) lock and lockAll take nothing; writeLock, which
// ApplyMessageUpdates takes for its chunk-count condition, still does.
func TestDocLocksOffOutsideFerretDB(t *testing.T) {
	t.Parallel()
	l := newDocLocks()
	ctx := context.Background()
	ids := []bson.ObjectID{newObjectID(), newObjectID()}
	unlock, err := l.lock(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	if n := held(&l); n != 0 {
		t.Errorf("lock took %d stripes, want none", n)
	}
	unlock()
	unlock, err = l.lockAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := held(&l); n != 0 {
		t.Errorf("lockAll took %d stripes, want none", n)
	}
	unlock()
	unlock, err = l.writeLock(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	if n := held(&l); n != 2 {
		t.Errorf("writeLock took %d stripes, want 2", n)
	}
	unlock()
}
