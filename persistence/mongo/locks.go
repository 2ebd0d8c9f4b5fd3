package mongo

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// lockStripes is the number of document lock stripes.
const lockStripes = 256

// docLocks serializes, within the process, the updates the store makes to
// one document, on FerretDB only (ferretDB, set by Open). MongoDB applies
// each update to a document atomically and needs none; FerretDB v1 (the
// test server) applies an update as a read, a change in memory and a
// write, with no lock in between, so two concurrent updates of one
// document (two appends, two token bumps) can lose one. On MongoDB lock
// takes nothing, so that no request waits, across another's network I/O,
// on a stripe it shares with a document it does not touch.
//
// One lock is taken on every server: writeLock, by ApplyMessageUpdates,
// whose condition on a message's chunk count assumes one writer per
// message in the process (two appends racing on one message would see
// each other's chunks as another writer's and skip: see rebase). The
// server's batching writer is that one writer, so on MongoDB nothing else
// waits on it.
//
// A stripe is a channel of one slot: a wait ends with its context.
type docLocks struct {
	ferretDB bool
	stripes  [lockStripes]chan struct{}
	// waitHook, set by tests, runs with the caller's context each time a
	// lock waits for a stripe held by another.
	waitHook *atomic.Pointer[func(context.Context)]
}

// newDocLocks returns the locks, off (as on MongoDB) until Open finds
// FerretDB.
func newDocLocks() docLocks {
	l := docLocks{waitHook: new(atomic.Pointer[func(context.Context)])}
	for i := range l.stripes {
		l.stripes[i] = make(chan struct{}, 1)
	}
	return l
}

// stripe maps an id to its lock; ids from persistence.NewID end in a
// counter, so consecutive ids use different stripes.
func stripe(id bson.ObjectID) int {
	return int(binary.BigEndian.Uint32(id[8:]) % lockStripes)
}

// noUnlock is the unlock function of a lock that took nothing.
func noUnlock() {}

// lock locks the stripes of ids on FerretDB (on MongoDB it takes nothing)
// and returns the unlock function; see writeLock.
func (l *docLocks) lock(ctx context.Context, ids ...bson.ObjectID) (unlock func(), err error) {
	if !l.ferretDB {
		return noUnlock, nil
	}
	return l.writeLock(ctx, ids...)
}

// writeLock locks the stripes of ids on any server, in ascending order so
// that two batches never wait on each other, and returns the unlock
// function. When ctx ends first it releases what it took and returns an
// error wrapping ctx.Err().
func (l *docLocks) writeLock(ctx context.Context, ids ...bson.ObjectID) (unlock func(), err error) {
	idx := make([]int, 0, len(ids))
	for _, id := range ids {
		idx = append(idx, stripe(id))
	}
	slices.Sort(idx)
	return l.take(ctx, slices.Compact(idx))
}

// lockAll locks every stripe on FerretDB (for updates of many documents
// at once); on MongoDB it takes nothing.
func (l *docLocks) lockAll(ctx context.Context) (unlock func(), err error) {
	if !l.ferretDB {
		return noUnlock, nil
	}
	idx := make([]int, lockStripes)
	for i := range idx {
		idx[i] = i
	}
	return l.take(ctx, idx)
}

// take locks the stripes idx, in their order, or none when ctx ends first.
func (l *docLocks) take(ctx context.Context, idx []int) (unlock func(), err error) {
	release := func(n int) {
		for _, i := range slices.Backward(idx[:n]) {
			<-l.stripes[i]
		}
	}
	for n, i := range idx {
		select {
		case l.stripes[i] <- struct{}{}:
			continue
		default: // held by another: wait
		}
		if hook := l.waitHook.Load(); hook != nil {
			(*hook)(ctx)
		}
		select {
		case l.stripes[i] <- struct{}{}:
		case <-ctx.Done():
			release(n)
			return nil, fmt.Errorf("wait for a document lock: %w", ctx.Err())
		}
	}
	return func() { release(len(idx)) }, nil
}
