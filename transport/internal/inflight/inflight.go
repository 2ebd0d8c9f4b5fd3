// Package inflight holds the idempotency keys whose first request is still
// being handled, so that a second request with the same key waits for the
// first one's outcome instead of racing it.
package inflight

import (
	"context"
	"fmt"
	"sync"
)

// Keys is a set of keys in flight, safe for concurrent use. The zero value
// is ready to use. It holds one process's requests only: two instances of
// a cluster do not see each other's keys.
type Keys struct {
	// OnWait, when set, is called each time a claim starts waiting for a
	// held key (tests use it to know a request is waiting). Set it before
	// the first Claim.
	OnWait func()

	mu   sync.Mutex
	busy map[string]chan struct{} // closed when the key's holder releases it
}

// Claim takes key for the caller, waiting while another caller holds it
// (bounded by ctx, whose error it then returns, wrapped). The caller must
// call release once its request's outcome is stored (or failed); release
// may be called more than once. A caller that waited sees what the first
// one stored when it looks the key up afterwards.
func (k *Keys) Claim(ctx context.Context, key string) (release func(), err error) {
	for {
		k.mu.Lock()
		held, ok := k.busy[key]
		if !ok {
			if k.busy == nil {
				k.busy = make(map[string]chan struct{})
			}
			done := make(chan struct{})
			k.busy[key] = done
			k.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { k.release(key, done) }) }, nil
		}
		k.mu.Unlock()
		if k.OnWait != nil {
			k.OnWait()
		}
		select {
		case <-held:
		case <-ctx.Done():
			return func() {}, fmt.Errorf("wait for an earlier request with the same key: %w", ctx.Err())
		}
	}
}

func (k *Keys) release(key string, done chan struct{}) {
	k.mu.Lock()
	delete(k.busy, key)
	k.mu.Unlock()
	close(done)
}

// Len is how many keys are held.
func (k *Keys) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.busy)
}

// Key is the key of a user's idempotency key: users' keys never meet.
func Key(userID, key string) string { return userID + "\x00" + key }
