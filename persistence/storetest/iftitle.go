package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"chatd/persistence"
)

// testConvUpdateIfTitle: a patch with IfTitle applies only while the
// stored title is the one given; otherwise it writes nothing (not even
// UpdatedAt) and says ErrConflict. Unknown ids and another owner's stay
// ErrNotFound, whatever the title.
func testConvUpdateIfTitle(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u, other := mkUser(t, s, "titler"), mkUser(t, s, "other")
	c := mkConv(t, s, u.ID, "")
	steps := []struct {
		name, title, ifTitle string
		want                 error
	}{
		{"untitled, named", "Otters", "", nil},
		{"named meanwhile, not overwritten", "Beavers", "", persistence.ErrConflict},
		{"the title expected, renamed", "Sea otters", "Otters", nil},
		{"a stale expectation", "Weasels", "Otters", persistence.ErrConflict},
		{"case matters", "Minks", "sea otters", persistence.ErrConflict},
	}
	cur := c
	for _, st := range steps {
		got, err := s.UpdateConversation(ctx, u.ID, c.ID, persistence.ConversationPatch{Title: strPtr(st.title), IfTitle: strPtr(st.ifTitle)})
		if st.want != nil {
			wantErr(t, st.name, err, st.want)
			sameConv(t, getConv(t, s, u.ID, c.ID), cur)
			continue
		}
		noErr(t, st.name, err)
		if got.Title != st.title || !got.UpdatedAt.After(cur.UpdatedAt) {
			t.Fatalf("%s: got %+v, want title %q and UpdatedAt past %v", st.name, got, st.title, cur.UpdatedAt)
		}
		sameConv(t, getConv(t, s, u.ID, c.ID), got)
		cur = got
	}
	_, err := s.UpdateConversation(ctx, other.ID, c.ID, persistence.ConversationPatch{Title: strPtr("x"), IfTitle: strPtr(cur.Title)})
	wantErr(t, "another owner's, title matching", err, persistence.ErrNotFound)
	_, err = s.UpdateConversation(ctx, other.ID, c.ID, persistence.ConversationPatch{Title: strPtr("x"), IfTitle: strPtr("no such title")})
	wantErr(t, "another owner's, title not matching", err, persistence.ErrNotFound)
	for _, id := range badIDs() {
		_, err := s.UpdateConversation(ctx, u.ID, id, persistence.ConversationPatch{Title: strPtr("x"), IfTitle: strPtr("")})
		wantErr(t, "UpdateConversation("+id+") with IfTitle", err, persistence.ErrNotFound)
	}
	sameConv(t, getConv(t, s, u.ID, c.ID), cur)
}

// testConvUpdateIfTitleRace: of several writers naming one untitled
// conversation at once, each only if it is still untitled (a title job
// racing a user's rename), exactly one succeeds and its title stays; every
// other gets ErrConflict.
func testConvUpdateIfTitleRace(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "racer")
	c := mkConv(t, s, u.ID, "")
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = s.UpdateConversation(ctx, u.ID, c.ID,
				persistence.ConversationPatch{Title: strPtr(fmt.Sprint("title ", i)), IfTitle: strPtr("")})
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both named the conversation", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, persistence.ErrConflict):
			t.Fatalf("writer %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer named the conversation")
	}
	if got := getConv(t, s, u.ID, c.ID).Title; got != fmt.Sprint("title ", winner) {
		t.Fatalf("title %q, want the winner's (writer %d)", got, winner)
	}
}
