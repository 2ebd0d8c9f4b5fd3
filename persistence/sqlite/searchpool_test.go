package sqlite

import (
	"context"
	"sync"
	"testing"
	"time"

	"chatd/persistence"
)

// TestSearchesLeaveReadersFree: while searches hold every connection they
// may have (each held open in the store until released) and more wait
// for one, another user's token check, list and conversation, and the
// searching user's own list without a search, are answered; the searches
// then end, each with its page. Before, searches ran on the readers
// every request uses: a user's burst of scans of seconds each (a short
// query over a thousand long texts) held all four, and another user's
// token check waited 29.9 s for one.
func TestSearchesLeaveReadersFree(t *testing.T) {
	t.Parallel()
	const conns = 2
	held, release := make(chan struct{}, 8), make(chan struct{})
	s := openTest(t, Options{ReadConns: conns, SearchConns: conns, searchRows: func(ctx context.Context) {
		held <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
	}})
	ctx := t.Context()
	a, b := persistence.User{Email: "a@x.test", Name: "A", PasswordHash: "x"}, persistence.User{Email: "b@x.test", Name: "B", PasswordHash: "x"}
	for _, u := range []*persistence.User{&a, &b} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []persistence.User{a, b} {
		c := persistence.Conversation{OwnerID: u.ID, Title: "word"}
		if err := s.CreateConversation(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	free := sync.OnceFunc(func() { close(release) })
	defer func() { free(); wg.Wait() }()
	errs := make(chan error, 2*conns+2)
	for i := range cap(errs) {
		query := []string{"wo", "word"}[i%2] // a scan, a search through the index
		wg.Go(func() {
			page, err := s.ListConversations(ctx, a.ID, persistence.ListQuery{Search: query})
			if err == nil && len(page.Conversations) != 1 {
				t.Errorf("search %q found %d conversations, want 1", query, len(page.Conversations))
			}
			errs <- err
		})
	}
	for range conns {
		<-held // every connection searches may take is taken
	}
	for name, read := range map[string]func(context.Context) error{
		"b's token check": func(ctx context.Context) error { _, err := s.TokenVersion(ctx, b.ID); return err },
		"b's list": func(ctx context.Context) error {
			_, err := s.ListConversations(ctx, b.ID, persistence.ListQuery{})
			return err
		},
		"a's list": func(ctx context.Context) error {
			_, err := s.ListConversations(ctx, a.ID, persistence.ListQuery{})
			return err
		},
		"b's user":         func(ctx context.Context) error { _, err := s.UserByID(ctx, b.ID); return err },
		"a readiness ping": s.Ping,
	} {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second) // waited out only when it fails
		start := time.Now()
		err := read(rctx)
		cancel()
		if err != nil {
			t.Fatalf("%s while searches held their connections: %v after %v", name, err, time.Since(start))
		}
	}
	free()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a search: %v", err)
		}
	}
}
