package counting_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"chatd/persistence"
	"chatd/persistence/counting"
	"chatd/persistence/sqlite"
)

// plainStore is the wrapped store with none of its optional interfaces.
type plainStore struct{ persistence.Store }

// touchingOne returns the conversation with each insert
// (persistence.TouchingInserter) but inserts one message at a time.
type touchingOne struct {
	persistence.Store
	inner *sqlite.Store
}

func (s touchingOne) InsertTouching(ctx context.Context, ms ...*persistence.Message) (persistence.Conversation, error) {
	return s.inner.InsertTouching(ctx, ms...)
}

// unreadable cannot read a conversation: its Conversation fails.
type unreadable struct{ persistence.Store }

func (unreadable) Conversation(context.Context, string, string) (persistence.Conversation, error) {
	return persistence.Conversation{}, errors.New("read failed")
}

// pager reads a conversation with its page or outline in one call
// (persistence.ConversationPager).
type pager struct{ persistence.Store }

func (s pager) ConversationWithPage(ctx context.Context, ownerID, id string, q persistence.PageQuery) (persistence.Conversation, persistence.MessagePage, error) {
	return persistence.ReadPageApart(ctx, s.Store, ownerID, id, q)
}

func (s pager) ConversationWithOutline(ctx context.Context, ownerID, id string) (persistence.Conversation, []persistence.Message, error) {
	return persistence.ReadOutlineApart(ctx, s.Store, ownerID, id)
}

// openOver returns a counting store over wrap of a fresh SQLite store, a
// user and a conversation of theirs.
func openOver(t *testing.T, wrap func(*sqlite.Store) persistence.Store) (context.Context, *counting.Store, persistence.Conversation) {
	t.Helper()
	ctx := t.Context()
	inner, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db"), Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() {
		if err := inner.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	u := persistence.User{Email: "t@example.test", Name: "T", PasswordHash: "h"}
	must(t, "CreateUser", inner.CreateUser(ctx, &u))
	c := persistence.Conversation{OwnerID: u.ID, Title: "t", Model: "m"}
	must(t, "CreateConversation", inner.CreateConversation(ctx, &c))
	return ctx, counting.Wrap(wrap(inner)), c
}

// TestInsertTouching: the conversation comes back with the inserts,
// counted as the store writes them (one write for all, one per message),
// read again (one read more) from a store without the interface; and a
// failed read after the messages were stored is no failure: the zero
// conversation and nil (the hub then reads it again or does without).
func TestInsertTouching(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		wrap    func(*sqlite.Store) persistence.Store
		writes  map[string]int64
		reads   int64
		touched bool
	}{
		{"all in one write", func(s *sqlite.Store) persistence.Store { return s },
			map[string]int64{"InsertMessages": 1}, 0, true},
		{"one write per message", func(s *sqlite.Store) persistence.Store { return touchingOne{s, s} },
			map[string]int64{"InsertMessage": 2}, 0, true},
		{"read again", func(s *sqlite.Store) persistence.Store { return plainStore{s} },
			map[string]int64{"InsertMessage": 2}, 1, true},
		{"read again, failing", func(s *sqlite.Store) persistence.Store { return unreadable{plainStore{s}} },
			map[string]int64{"InsertMessage": 2}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, s, c := openOver(t, tc.wrap)
			q := persistence.Message{ConversationID: c.ID, OwnerID: c.OwnerID, Role: persistence.RoleUser,
				Content: "q", Status: persistence.StatusComplete}
			a := persistence.Message{ConversationID: c.ID, OwnerID: c.OwnerID, Role: persistence.RoleAssistant,
				Status: persistence.StatusStreaming}
			got, err := s.InsertTouching(ctx, &q, &a)
			if err != nil {
				t.Fatalf("InsertTouching: %v (the messages were stored)", err)
			}
			switch {
			case tc.touched && (got.ID != c.ID || got.UpdatedAt.Before(a.CreatedAt)):
				t.Errorf("conversation %s at %v, want %s at or after the answer's %v", got.ID, got.UpdatedAt, c.ID, a.CreatedAt)
			case !tc.touched && got.ID != "":
				t.Errorf("conversation %+v, want the zero one (it could not be read)", got)
			}
			ms, err := s.Unwrap().Messages(ctx, c.OwnerID, c.ID)
			if err != nil || len(ms) != 2 {
				t.Errorf("stored messages: %d, %v; want both", len(ms), err)
			}
			w := s.Writes()
			if len(w.ByMethod) != len(tc.writes) || w.Reads != tc.reads || w.Errors != 0 {
				t.Errorf("counts %+v, want writes %v and %d reads", w, tc.writes, tc.reads)
			}
			for k, v := range tc.writes {
				if w.ByMethod[k] != v {
					t.Errorf("%s counted %d, want %d", k, w.ByMethod[k], v)
				}
			}
		})
	}
}

// TestConversationWithPageAndOutline: one read when the wrapped store
// reads both in one call (persistence.ConversationPager), else two; the
// conversation and its messages pass through either way.
func TestConversationWithPageAndOutline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		wrap  func(*sqlite.Store) persistence.Store
		reads int64
	}{
		{"one call", func(s *sqlite.Store) persistence.Store { return pager{s} }, 1},
		{"apart", func(s *sqlite.Store) persistence.Store { return s }, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, s, c := openOver(t, tc.wrap)
			m := persistence.Message{ConversationID: c.ID, OwnerID: c.OwnerID, Role: persistence.RoleUser,
				Content: "q", Status: persistence.StatusComplete}
			must(t, "InsertMessage", s.Unwrap().InsertMessage(ctx, &m))

			got, page, err := s.ConversationWithPage(ctx, c.OwnerID, c.ID, persistence.PageQuery{})
			must(t, "ConversationWithPage", err)
			if got.ID != c.ID || len(page.Messages) != 1 || page.Messages[0].ID != m.ID {
				t.Errorf("ConversationWithPage = %s, %+v; want %s with its message", got.ID, page, c.ID)
			}
			if r := s.Writes().Reads; r != tc.reads {
				t.Errorf("ConversationWithPage counted %d reads, want %d", r, tc.reads)
			}
			s.Reset()
			got, outline, err := s.ConversationWithOutline(ctx, c.OwnerID, c.ID)
			must(t, "ConversationWithOutline", err)
			if got.ID != c.ID || len(outline) != 1 || outline[0].ID != m.ID {
				t.Errorf("ConversationWithOutline = %s, %v; want %s with its message", got.ID, outline, c.ID)
			}
			if r := s.Writes().Reads; r != tc.reads {
				t.Errorf("ConversationWithOutline counted %d reads, want %d", r, tc.reads)
			}
			if _, _, err := s.ConversationWithPage(ctx, c.OwnerID, persistence.NewID(), persistence.PageQuery{}); !errors.Is(err, persistence.ErrNotFound) {
				t.Errorf("ConversationWithPage of an unknown id: %v, want ErrNotFound", err)
			}
		})
	}
}
