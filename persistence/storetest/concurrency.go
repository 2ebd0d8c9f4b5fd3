package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"chatd/persistence"
)

func concurrencyTests() []storeTest {
	return []storeTest{
		{"MixedLoad", testConcMixedLoad},
		{"SameClientID", testConcSameClientID},
		{"SameConversationClientID", testConcSameConversationClientID},
		{"ConcurrentAppends", testConcAppends},
		{"ConcurrentBumps", testConcBumps},
		{"ConcurrentPasswordChanges", testConcPasswordChanges},
	}
}

// testConcMixedLoad runs writers (inserts, streaming updates) and readers
// (list, search, load) at once, the way the batching writer and HTTP
// handlers do, and checks nothing fails and nothing is lost.
func testConcMixedLoad(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	const workers, rounds = 6, 15
	users := make([]persistence.User, workers)
	for i := range users {
		users[i] = mkUser(t, s, fmt.Sprintf("worker%d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*2)
	for i := range workers {
		u := users[i]
		wg.Add(2)
		go func() { // writer
			defer wg.Done()
			errs <- concWriter(ctx, s, u, rounds)
		}()
		go func() { // reader
			defer wg.Done()
			errs <- concReader(ctx, s, u, rounds)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		noErr(t, "concurrent worker", err)
	}
	for _, u := range users {
		convs := listAll(t, s, u.ID, "", 7)
		if len(convs) != rounds {
			t.Fatalf("user %s has %d conversations, want %d", u.Name, len(convs), rounds)
		}
		for _, c := range convs {
			ms, err := s.Messages(ctx, u.ID, c.ID)
			noErr(t, "Messages", err)
			if len(ms) != 2 || ms[1].Content != "answer: 0 1 2 3 4" || ms[1].Status != persistence.StatusComplete {
				t.Fatalf("conversation %s: %d messages, last %+v", c.Title, len(ms), ms[len(ms)-1])
			}
		}
	}
}

func concWriter(ctx context.Context, s persistence.Store, u persistence.User, rounds int) error {
	for r := range rounds {
		c := persistence.Conversation{OwnerID: u.ID, Title: fmt.Sprintf("%s conv %d", u.Name, r)}
		if err := s.CreateConversation(ctx, &c); err != nil {
			return err
		}
		q := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleUser, Content: "question", Status: persistence.StatusComplete}
		if err := s.InsertMessage(ctx, &q); err != nil {
			return err
		}
		a := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, ParentID: q.ID, Role: persistence.RoleAssistant, Content: "answer:", Status: persistence.StatusStreaming}
		if err := s.InsertMessage(ctx, &a); err != nil {
			return err
		}
		for k := range 5 {
			up := persistence.MessageUpdate{ID: a.ID, Append: fmt.Sprintf(" %d", k)}
			if k == 4 {
				up.Status = persistence.StatusComplete
			}
			if _, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{up}); err != nil {
				return err
			}
		}
	}
	return nil
}

func concReader(ctx context.Context, s persistence.Store, u persistence.User, rounds int) error {
	for range rounds * 2 {
		p, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{Limit: 5})
		if err != nil {
			return err
		}
		if _, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{Search: "answer"}); err != nil {
			return err
		}
		for _, c := range p.Conversations {
			if _, err := s.Messages(ctx, u.ID, c.ID); err != nil {
				return err
			}
		}
		if _, err := s.UserByID(ctx, u.ID); err != nil {
			return err
		}
	}
	return nil
}

func testConcSameClientID(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "retrier")
	c := mkConv(t, s, u.ID, "retries")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleUser,
				Content: fmt.Sprintf("attempt %d", i), Status: persistence.StatusComplete, ClientMessageID: "same"}
			errs[i] = s.InsertMessage(ctx, &m)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, persistence.ErrDuplicate):
			t.Fatalf("concurrent InsertMessage: unexpected error %v", err)
		}
	}
	ms, err := s.Messages(ctx, u.ID, c.ID)
	noErr(t, "Messages", err)
	if ok != 1 || len(ms) != 1 {
		t.Fatalf("%d inserts succeeded and %d messages stored, want 1 and 1", ok, len(ms))
	}
}

// testConcAppends appends from several goroutines at once: appends are
// atomic in the database, so none may be lost.
func testConcAppends(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u, _, m := streamingFixture(t, s, "")
	const workers, each = 6, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				chunk := fmt.Sprintf("<%d.%d>", w, i)
				if _, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: m.ID, Append: chunk}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		noErr(t, "concurrent ApplyMessageUpdates", err)
	}
	got := getMsg(t, s, u.ID, m.ID).Content
	parts := strings.SplitAfter(got, ">")
	parts = parts[:len(parts)-1] // after the last ">"
	if len(parts) != workers*each {
		t.Fatalf("content has %d chunks, want %d: %q", len(parts), workers*each, got)
	}
	// Each worker's chunks appear in that worker's order.
	next := make([]int, workers)
	for _, p := range parts {
		var w, i int
		if _, err := fmt.Sscanf(p, "<%d.%d>", &w, &i); err != nil || w < 0 || w >= workers || i != next[w] {
			t.Fatalf("chunk %q out of order (want worker %d chunk %d)", p, w, next[min(max(w, 0), workers-1)])
		}
		next[w]++
	}
}

func testConcBumps(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "bumps")
	const n = 10
	var wg sync.WaitGroup
	got := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.BumpTokenVersion(ctx, u.ID)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		noErr(t, "BumpTokenVersion", err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("concurrent bumps returned %v, want 1..%d each once", got, n)
		}
	}
}

// testConcPasswordChanges runs password changes (each from the version it
// read, 0) and token bumps of one user at once: every bump takes its own
// token version; at most one change applies, and the others (which find
// the version moved) fail with ErrConflict, writing nothing; no version is
// lost, and the stored hash is the applied change's, if any.
func testConcPasswordChanges(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "changes")
	const n = 10 // of each
	var wg sync.WaitGroup
	got := make([]int64, 2*n)
	errs := make([]error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.ChangePassword(ctx, u.ID, fmt.Sprintf("hash-%d", i), 0)
		}()
		go func() {
			defer wg.Done()
			got[n+i], errs[n+i] = s.BumpTokenVersion(ctx, u.ID)
		}()
	}
	wg.Wait()
	var versions []int64
	applied := ""
	for i, err := range errs {
		switch {
		case i >= n:
			noErr(t, "BumpTokenVersion", err)
		case errors.Is(err, persistence.ErrConflict):
			continue
		case err != nil:
			t.Fatalf("ChangePassword: %v, want success or ErrConflict", err)
		case applied != "":
			t.Fatalf("two changes from version 0 applied: %s and hash-%d", applied, i)
		default:
			applied = fmt.Sprintf("hash-%d", i)
		}
		versions = append(versions, got[i])
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
	for i, v := range versions {
		if v != int64(i+1) {
			t.Fatalf("concurrent changes and bumps returned %v, want 1..%d each once", versions, len(versions))
		}
	}
	stored, err := s.UserByID(ctx, u.ID)
	noErr(t, "UserByID", err)
	wantHash := u.PasswordHash
	if applied != "" {
		wantHash = applied
	}
	if stored.TokenVersion != int64(len(versions)) || stored.PasswordHash != wantHash {
		t.Fatalf("after concurrent changes: TokenVersion %d, PasswordHash %q; want %d and %q",
			stored.TokenVersion, stored.PasswordHash, len(versions), wantHash)
	}
}
