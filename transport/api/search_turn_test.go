package api_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"chatd/persistence"
	"chatd/transport/api"
)

// gatedSearches holds every search in the store until open is closed,
// telling entered whose search came in; a list without q goes through.
type gatedSearches struct {
	api.ConversationStore
	entered chan string
	open    chan struct{}
	once    sync.Once
}

func (g *gatedSearches) ListConversations(ctx context.Context, owner string, q persistence.ListQuery) (persistence.ConversationPage, error) {
	if q.Search != "" {
		g.entered <- owner
		select {
		case <-g.open:
		case <-ctx.Done():
			return persistence.ConversationPage{}, ctx.Err()
		}
	}
	return g.ConversationStore.ListConversations(ctx, owner, q)
}

func (g *gatedSearches) release() { g.once.Do(func() { close(g.open) }) }

// TestSearchesOfOneUserTakeTurns: while one of a user's searches is in
// the store, a second one of the same user waits for it (it reaches the
// store only after, and is answered 200 then), another user's search
// and the user's list without q do not wait. Before, every search went
// to the store at once: a user's burst of searches of seconds each held
// every reader of the SQLite store, and everyone's token checks waited.
func TestSearchesOfOneUserTakeTurns(t *testing.T) {
	t.Parallel()
	gate := &gatedSearches{entered: make(chan string, 4), open: make(chan struct{})}
	waited := make(chan struct{}, 4)
	e := newAPIEnvWith(t, api.ConversationOptions{},
		func(s api.ConversationStore) api.ConversationStore { gate.ConversationStore = s; return gate },
		func(h *api.Conversations) { api.OnSearchWait(h, func() { waited <- struct{}{} }) })
	a, b := e.user(t), e.user(t)
	statuses := make(chan int, 3)
	search := func(user string) {
		status, err := e.getStatus(t.Context(), user, "/api/conversations?q=word")
		if err != nil {
			t.Error(err)
		}
		statuses <- status
	}
	var wg sync.WaitGroup
	defer func() { gate.release(); wg.Wait() }()
	wg.Go(func() { search(a) })
	if who := <-gate.entered; who != a {
		t.Fatalf("the store got %s's search, want %s's", who, a)
	}
	wg.Go(func() { search(a) })
	select {
	case <-waited: // the second waits for the first
	case who := <-gate.entered:
		t.Fatalf("%s's second search reached the store while the first ran (a's: %v)", who, who == a)
	}
	wg.Go(func() { search(b) })
	if who := <-gate.entered; who != b {
		t.Fatalf("the store got %s's search, want the other user's (%s)", who, b)
	}
	if res, body := e.get(t, a, "/api/conversations"); res.StatusCode != http.StatusOK {
		t.Fatalf("a's list without q during the search: %d %s", res.StatusCode, body)
	}
	gate.release()
	if who := <-gate.entered; who != a {
		t.Fatalf("after the first search the store got %s's, want a's second", who)
	}
	wg.Wait()
	close(statuses)
	for status := range statuses {
		if status != http.StatusOK {
			t.Fatalf("a search answered %d, want 200", status)
		}
	}
}
