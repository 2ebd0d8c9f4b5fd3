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

// storeWithUsers opens a SQLite store for the test with an account per
// email, and returns it and their ids.
func storeWithUsers(ctx context.Context, t *testing.T, emails ...string) (*sqlite.Store, []string) {
	t.Helper()
	store, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	var ids []string
	for _, email := range emails {
		u := persistence.User{Email: email, Name: "N", PasswordHash: "x"}
		if err := store.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	return store, ids
}

// TestWatchClosesRemovedAccounts: the connections of an account that no
// longer exists are closed; the others are left alone.
func TestWatchClosesRemovedAccounts(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	store, ids := storeWithUsers(ctx, t, "stays@example.com", "goes@example.com")
	users := &removedUsers{Store: store, removed: map[string]bool{}}
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

// TestWatchClosesRevokedSessions: a user whose token version moved on
// since their connections opened (a logout this process did not hear of)
// has the connections of older sessions closed, with the user's current
// version; a user whose version did not move is told the version it has.
func TestWatchClosesRevokedSessions(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	store, ids := storeWithUsers(ctx, t, "stays@example.com", "logged-out@example.com")
	bumped, err := store.BumpTokenVersion(ctx, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	type call struct {
		id string
		tv int64
	}
	calls := make(chan call, 100)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(wctx, WatchOptions{Users: store, Interval: 10 * time.Millisecond,
			Connected:    func() []string { return ids },
			Close:        func(id string) { t.Errorf("account %s closed as gone", id) },
			CloseRevoked: func(id string, tv int64) int { calls <- call{id, tv}; return 1 },
			Logger:       slog.New(slog.DiscardHandler)})
	}()
	want := map[string]int64{ids[0]: 0, ids[1]: bumped}
	for len(want) > 0 {
		select {
		case c := <-calls:
			if v, ok := want[c.id]; ok {
				if c.tv != v {
					t.Fatalf("user %s checked against version %d, want %d", c.id, c.tv, v)
				}
				delete(want, c.id)
			}
		case <-ctx.Done():
			t.Fatalf("not every connected user was checked: %v left", want)
		}
	}
	stop()
	<-done
}
