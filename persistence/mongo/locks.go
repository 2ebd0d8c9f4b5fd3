package mongo

import (
	"encoding/binary"
	"slices"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// lockStripes is the number of document lock stripes.
const lockStripes = 256

// docLocks serializes, within the process, the updates the store makes to
// one document. MongoDB applies each update to a document atomically and
// does not need them; FerretDB v1 (the test server) applies an update as a
// read, a change in memory and a write, with no lock in between, so two
// concurrent updates of one document (two appends, two token bumps) can lose
// one. The server's own access pattern (one batching writer) leaves them
// uncontended, so they cost next to nothing on MongoDB.
type docLocks struct {
	stripes [lockStripes]sync.Mutex
}

// stripe maps an id to its lock; ids from persistence.NewID end in a
// counter, so consecutive ids use different stripes.
func stripe(id bson.ObjectID) int {
	return int(binary.BigEndian.Uint32(id[8:]) % lockStripes)
}

// lock locks the stripes of ids, in ascending order so that two batches
// never wait on each other, and returns the unlock function.
func (l *docLocks) lock(ids ...bson.ObjectID) (unlock func()) {
	idx := make([]int, 0, len(ids))
	for _, id := range ids {
		idx = append(idx, stripe(id))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		l.stripes[i].Lock()
	}
	return func() {
		for _, i := range slices.Backward(idx) {
			l.stripes[i].Unlock()
		}
	}
}

// lockAll locks every stripe (for updates of many documents at once).
func (l *docLocks) lockAll() (unlock func()) {
	for i := range l.stripes {
		l.stripes[i].Lock()
	}
	return func() {
		for i := len(l.stripes) - 1; i >= 0; i-- {
			l.stripes[i].Unlock()
		}
	}
}
