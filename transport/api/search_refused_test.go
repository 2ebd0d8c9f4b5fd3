package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/transport/api"
)

// searchCluster is a cluster's search budget of one user: left events,
// the first refuseFirst takes refused whatever is left.
type searchCluster struct {
	mu          sync.Mutex
	left        int
	refuseFirst int
	takes       int
}

func (c *searchCluster) TakeBudget(_ context.Context, _, _ string, _ int) (time.Duration, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.takes++
	if c.takes <= c.refuseFirst || c.left == 0 {
		return time.Second, false, nil
	}
	c.left--
	return 0, true, nil
}

func (c *searchCluster) GiveBudget(context.Context, string, string, int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.left++
	return nil
}

func (c *searchCluster) remaining() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.left
}

// getStatus is apiEnv.get for a goroutine: the status, or an error.
func (e *apiEnv) getStatus(ctx context.Context, user, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-User", user)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, err = io.Copy(io.Discard, res.Body)
	return res.StatusCode, err
}

// TestRefusedSearchSpendsNothing: a search refused for its input, the
// cursor included (which only the store can read, after the budget is
// taken), leaves the user's searches as they were, of this process and of
// the cluster, also when many are sent at once: the user's whole budget
// is then still there for searches that are answered.
func TestRefusedSearchSpendsNothing(t *testing.T) {
	t.Parallel()
	cursor := func(c func(good string) string) func(string) string {
		return func(good string) string { return "q=word&cursor=" + url.QueryEscape(c(good)) }
	}
	cases := []struct {
		name  string
		query func(good string) string // the URL's query, given a cursor the store made
	}{
		{"a malformed cursor", cursor(func(string) string { return "garbage" })},
		{"a cursor cut short", cursor(func(good string) string { return good[:len(good)/2] })},
		{"a cursor with a byte more", cursor(func(good string) string { return good + "A" })},
		{"a cursor over the size limit", cursor(func(string) string { return strings.Repeat("A", api.MaxCursorBytes+1) })},
		{"a limit out of range", func(string) string { return "q=word&limit=0" }},
		{"a query too long", func(string) string { return "q=" + strings.Repeat("x", api.MaxQueryChars+1) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const perMinute = 2
			cluster := &searchCluster{left: perMinute}
			e := newAPIEnv(t, api.ConversationOptions{SearchesPerMinute: perMinute, SharedSearches: cluster})
			owner := e.user(t)
			for range 2 {
				e.conversation(t, owner, "word")
			}
			var page struct{ NextCursor string }
			if res, body := e.get(t, owner, "/api/conversations?limit=1"); res.StatusCode != 200 || json.Unmarshal(body, &page) != nil || page.NextCursor == "" {
				t.Fatalf("first page: %d %s", res.StatusCode, body)
			}
			path := "/api/conversations?" + tc.query(page.NextCursor)
			statuses := make([]int, 8)
			var wg sync.WaitGroup
			for i := range statuses {
				wg.Go(func() {
					status, err := e.getStatus(t.Context(), owner, path)
					if err != nil {
						t.Error(err)
					}
					statuses[i] = status
				})
			}
			wg.Wait()
			for i, status := range statuses {
				// 429 for one that met the budget held by those in flight.
				if status != 400 && status != 429 {
					t.Fatalf("refused search %d: %d, want 400 (or 429)", i, status)
				}
			}
			if res, body := e.get(t, owner, path); res.StatusCode != 400 {
				t.Fatalf("refused search alone: %d %s, want 400", res.StatusCode, body)
			}
			for i := range perMinute {
				if res, body := e.get(t, owner, "/api/conversations?q=word"); res.StatusCode != 200 {
					t.Fatalf("search %d after the refusals: %d %s", i+1, res.StatusCode, body)
				}
			}
			if res, _ := e.get(t, owner, "/api/conversations?q=word"); res.StatusCode != 429 {
				t.Fatalf("search past the budget: %d, want 429", res.StatusCode)
			}
			if left := cluster.remaining(); left != 0 {
				t.Fatalf("the cluster's budget holds %d after %d searches answered, want 0", left, perMinute)
			}
		})
	}
}

// TestSearchRefusedByClusterSpendsNothingHere: a search the cluster's
// budget refuses (429) gives back the token this process took for it.
func TestSearchRefusedByClusterSpendsNothingHere(t *testing.T) {
	t.Parallel()
	cluster := &searchCluster{left: 5, refuseFirst: 1}
	e := newAPIEnv(t, api.ConversationOptions{SearchesPerMinute: 1, SharedSearches: cluster})
	user := persistence.NewID()
	for i, want := range []int{429, 200, 429} {
		if res, body := e.get(t, user, "/api/conversations?q=word"); res.StatusCode != want {
			t.Fatalf("search %d: %d %s, want %d", i+1, res.StatusCode, body, want)
		}
	}
	if left := cluster.remaining(); left != 4 {
		t.Fatalf("the cluster's budget holds %d, want 4 (one search answered)", left)
	}
}
