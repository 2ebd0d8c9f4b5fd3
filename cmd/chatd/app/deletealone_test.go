package app

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"chatd/hub"
	"chatd/persistence"
)

// aloneBus is the bus of a cluster instance that stops as a single
// instance: it judges itself the only live instance (Alone), or, down,
// its cluster is (Health fails). asked is closed as Shutdown finds so.
type aloneBus struct {
	*hub.MemBus
	alone bool
	asked chan struct{}
	once  sync.Once
}

// Alone tells asked and reports alone.
func (b *aloneBus) Alone() bool {
	b.once.Do(func() { close(b.asked) })
	return b.alone
}

// Health tells asked once the bus is unusable.
func (b *aloneBus) Health(ctx context.Context) error {
	err := b.MemBus.Health(ctx)
	if err != nil {
		b.once.Do(func() { close(b.asked) })
	}
	return err
}

// Close has nothing to close.
func (b *aloneBus) Close(context.Context) error { return nil }

// markHeldStore holds an account deletion at its mark (MarkUserDeleting),
// telling held, until release is closed.
type markHeldStore struct {
	persistence.Store
	held    chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *markHeldStore) MarkUserDeleting(ctx context.Context, id string) error {
	s.once.Do(func() { close(s.held) })
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.MarkUserDeleting(ctx, id)
}

// TestDeletionWhenStoppedAlone: an account deletion under way, at its
// mark, when a cluster instance that stops as a single instance (the only
// live one, or its bus down) gets SIGTERM (Shutdown) is waited for within
// the grace and removes the account: 204. Before, the stop refused the
// ends of users' live work first: the deletion, past its token revocation,
// was refused as it came to end its user's live work (errBusClosing), its
// mark taken back: the user signed out everywhere, the account kept, 503.
func TestDeletionWhenStoppedAlone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		down bool // the cluster's bus is down, else this instance is the only live one
	}{
		{"only live instance", false},
		{"bus down", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cluster := hub.NewMemCluster()
			bus := &aloneBus{MemBus: cluster.Join("a"), alone: !tc.down, asked: make(chan struct{})}
			store := &markHeldStore{held: make(chan struct{}), release: make(chan struct{})}
			e := newEnv(t, envOptions{tweak: func(c *Config) {
				store.Store = c.Store
				c.Store, c.Bus = store, bus
			}})
			u := e.register(t)
			deleted := make(chan int, 1)
			go func() { deleted <- e.deleteMe(u) }()
			<-store.held
			cluster.SetDown(tc.down)

			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			shut := make(chan error, 1)
			go func() { shut <- e.app.Shutdown(ctx) }()
			<-bus.asked // the stop goes on as a single instance's
			close(store.release)

			if got := <-deleted; got != http.StatusNoContent {
				t.Fatalf("DELETE /api/auth/me: %d, want %d", got, http.StatusNoContent)
			}
			if err := <-shut; err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			if _, err := e.store.UserByID(ctx, u.ID); !errors.Is(err, persistence.ErrNotFound) {
				t.Fatalf("the deleted account: %v, want not found", err)
			}
		})
	}
}

// TestStopAloneBoundsItsWaitForDeletions: a cluster instance stopping as
// a single instance waits for the account deletions under way only
// deletionsFirst before it interrupts its answers: with a deletion held
// at its mark for good, another user's running answer still gets its
// done (interrupted) while the deletion is held. Before, the stop waited
// for the deletion for as long as it took, up to the whole grace, its
// answers streaming on and new sends taken meanwhile.
func TestStopAloneBoundsItsWaitForDeletions(t *testing.T) {
	t.Parallel()
	cluster := hub.NewMemCluster()
	bus := &aloneBus{MemBus: cluster.Join("a"), alone: true, asked: make(chan struct{})}
	store := &markHeldStore{held: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		store.Store = c.Store
		c.Store, c.Bus = store, bus
	}})
	other := e.register(t)
	tab := e.dial(t, other)
	ack := tab.start("streaming on [[fake tokens=100000 delay=5ms]]")
	seen := tab.until(func(f frame) bool { return f.Type == "delta" && f.MessageID == ack.MessageID })

	u := e.register(t)
	deleted := make(chan int, 1)
	go func() { deleted <- e.deleteMe(u) }()
	<-store.held

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- e.app.Shutdown(ctx) }()
	seen = append(seen, untilOrClosed(t, tab, isDone(ack.MessageID))...)
	if _, done := answer(t, live(seen), ack.MessageID); done.Status != "interrupted" {
		t.Fatalf("the other user's done: %s", done.raw)
	}
	close(store.release) // only now: the answer was interrupted while the deletion was held
	<-deleted
	<-shut
}
