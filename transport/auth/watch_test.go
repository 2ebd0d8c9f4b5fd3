package auth

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/persistence/sqlite"
)

// removedUsers is the store with some accounts removed, as an operator
// deleting or disabling them in the database would.
type removedUsers struct {
	*sqlite.Store
	mu      sync.Mutex
	removed map[string]bool
}

func (s *removedUsers) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removed[id] = true
}

func (s *removedUsers) UserByID(ctx context.Context, id string) (persistence.User, error) {
	s.mu.Lock()
	gone := s.removed[id]
	s.mu.Unlock()
	if gone {
		return persistence.User{}, persistence.ErrNotFound
	}
	return s.Store.UserByID(ctx, id)
}

// TestWatchClosesRemovedAccounts: the connections of an account that no
// longer exists are closed; the others are left alone.
func TestWatchClosesRemovedAccounts(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	store, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	users := &removedUsers{Store: store, removed: map[string]bool{}}
	var ids []string
	for _, email := range []string{"stays@example.com", "goes@example.com"} {
		u := persistence.User{Email: email, Name: "N", PasswordHash: "x"}
		if err := store.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	closed := make(chan string, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, WatchOptions{Users: users, Interval: 10 * time.Millisecond,
			Connected: func() []string { return ids },
			Close:     func(id string) { closed <- id },
			Logger:    slog.New(slog.DiscardHandler)})
	}()
	users.remove(ids[1])
	select {
	case id := <-closed:
		if id != ids[1] {
			t.Fatalf("closed %s, want the removed %s", id, ids[1])
		}
	case <-ctx.Done():
		t.Fatal("the removed account's connections were not closed")
	}
	cancel()
	<-done
	for len(closed) > 0 {
		if id := <-closed; id != ids[1] {
			t.Fatalf("closed the account that stays")
		}
	}
}
