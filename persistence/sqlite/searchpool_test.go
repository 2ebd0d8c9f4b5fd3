package sqlite

import (
	"context"
	"fmt"
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

// scanKey marks the context of a test's scans, which searchRows holds.
type scanKey struct{}

// TestScansLeaveIndexedSearchesAConnection: while a scan (a query shorter
// than a trigram) holds its search connection and another waits, a
// search through the index still gets a connection and is answered.
// Before, two users' scans of seconds each took both search connections
// and every other search waited behind them.
func TestScansLeaveIndexedSearchesAConnection(t *testing.T) {
	t.Parallel()
	held, release, waits := make(chan struct{}, 4), make(chan struct{}), make(chan struct{}, 4)
	s := openTest(t, Options{SearchConns: 2, scanWaits: func() { waits <- struct{}{} },
		searchRows: func(ctx context.Context) {
			if ctx.Value(scanKey{}) == nil {
				return
			}
			held <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}})
	ctx := t.Context()
	users := make([]persistence.User, 3)
	for i := range users {
		users[i] = persistence.User{Email: fmt.Sprintf("u%d@x.test", i), Name: "U", PasswordHash: "x"}
		if err := s.CreateUser(ctx, &users[i]); err != nil {
			t.Fatal(err)
		}
		c := persistence.Conversation{OwnerID: users[i].ID, Title: "word"}
		if err := s.CreateConversation(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	free := sync.OnceFunc(func() { close(release) })
	defer func() { free(); wg.Wait() }()
	scanCtx := context.WithValue(ctx, scanKey{}, true)
	for _, u := range users[:2] {
		wg.Go(func() {
			if _, err := s.ListConversations(scanCtx, u.ID, persistence.ListQuery{Search: "wo"}); err != nil {
				t.Errorf("scan: %v", err)
			}
		})
	}
	for range 2 { // one scan runs; the other runs too, or waits for it
		select {
		case <-held:
		case <-waits:
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second) // waited out only when it fails
	defer cancel()
	page, err := s.ListConversations(rctx, users[2].ID, persistence.ListQuery{Search: "word"})
	if err != nil {
		t.Fatalf("a search through the index while scans ran: %v", err)
	}
	if len(page.Conversations) != 1 {
		t.Fatalf("search found %d conversations, want 1", len(page.Conversations))
	}
}
