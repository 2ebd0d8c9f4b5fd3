package hub

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// plainStore is a Store and nothing more: none of the optional interfaces
// (persistence.MessagesInserter, persistence.TouchingInserter) of the
// store it wraps.
type plainStore struct{ Store }

// touchingStore is a memStore that returns the conversation with its
// inserts (persistence.TouchingInserter), as the SQLite and MongoDB stores do.
type touchingStore struct{ *memStore }

func (s touchingStore) InsertTouching(ctx context.Context, ms ...*persistence.Message) (persistence.Conversation, error) {
	if err := s.InsertMessages(ctx, ms...); err != nil {
		return persistence.Conversation{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.convs[ms[len(ms)-1].ConversationID], nil
}

// blindTouchingStore is a touchingStore that stores the messages but cannot
// say what their conversation became: it returns the zero Conversation and
// nil, as persistence/counting does when its read after the insert fails.
type blindTouchingStore struct{ *memStore }

func (s blindTouchingStore) InsertTouching(ctx context.Context, ms ...*persistence.Message) (persistence.Conversation, error) {
	return persistence.Conversation{}, s.InsertMessages(ctx, ms...)
}

// insertStores are the stores an insert's conversation comes from: with
// the insert (persistence.TouchingInserter), read again after it, or read
// again because the insert could not say.
var insertStores = []struct {
	name  string
	store func(*memStore) Store
}{
	{"the insert returns the conversation", func(s *memStore) Store { return touchingStore{s} }},
	{"the conversation read again", func(s *memStore) Store { return s }},
	{"the insert returns no conversation, read again", func(s *memStore) Store { return blindTouchingStore{s} }},
	{"the conversation read again, messages one by one", func(s *memStore) Store { return plainStore{s} }},
}

// TestSendAnnouncesChangeMeanwhile: a rename (or a title, or another
// change of the conversation) stored between a send's read of the
// conversation and the insert of its messages is in the send's
// conversation frame, which carries the conversation as the store has it
// after the insert: the older copy with the newer updatedAt would undo
// the rename in every tab until a reload. A store that returns the
// conversation with its insert (persistence.TouchingInserter) is asked
// nothing more; another one is read again, as is one that returned the
// zero conversation (it could not say).
func TestSendAnnouncesChangeMeanwhile(t *testing.T) {
	t.Parallel()
	for _, tc := range insertStores {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := newMemStore()
			opts := Options{Store: tc.store(store), Writer: &memWriter{store: store}, Model: &fakeModel{script: say("ok")}}
			h := New(opts)
			runHub(t, h, nil)
			sub := newSub("u")
			h.Register(sub)
			first, err := h.Send(context.Background(), sub, "u", SendRequest{Content: "hi"})
			if err != nil {
				t.Fatal(err)
			}
			sub.textUntilDone(t, first.MessageID, 0)

			var once sync.Once
			title, prompt := "Renamed", "Be brief."
			store.beforeInsert = func(m *persistence.Message) {
				once.Do(func() { // after the send read the conversation, before its insert
					if _, err := store.UpdateConversation(context.Background(), "u", m.ConversationID,
						persistence.ConversationPatch{Title: &title, SystemPrompt: &prompt}); err != nil {
						t.Error(err)
					}
				})
			}
			res, err := h.Send(context.Background(), sub, "u", SendRequest{Content: "again", ConversationID: first.ConversationID})
			if err != nil {
				t.Fatal(err)
			}
			var c persistence.Conversation
			for c.ID == "" { // after the ack and the message frames
				if f := decode(t, sub.next(t)); f.Type == protocol.TypeConversation {
					c = f.Conversation
				}
			}
			stored, err := store.Conversation(context.Background(), "u", first.ConversationID)
			if err != nil {
				t.Fatal(err)
			}
			if c.Title != title || c.SystemPrompt != prompt || !c.UpdatedAt.Equal(stored.UpdatedAt) {
				t.Errorf("conversation frame %q %q at %v, want %q %q at %v, as stored", c.Title, c.SystemPrompt, c.UpdatedAt,
					title, prompt, stored.UpdatedAt)
			}
			sub.textUntilDone(t, res.MessageID, 0)
		})
	}
}

// TestRegenerateAnnouncesConversation: a regenerate moves its conversation
// up (the answer's insert moves its updatedAt), and the user's every tab
// is told so, as after a send: one that does not follow the conversation
// gets a conversation frame (updated) carrying it as stored after the
// insert, a rename stored meanwhile included, and nothing else; the tab
// that regenerated gets it after the ack and the answer's message and
// before any delta, however fast the answer. Before, a regenerate told no
// tab, and those not following it kept the old order until a reload.
func TestRegenerateAnnouncesConversation(t *testing.T) {
	t.Parallel()
	for _, tc := range insertStores {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := newMemStore()
			h := New(Options{Store: tc.store(store), Writer: &memWriter{store: store}, Model: &fakeModel{script: say("fast")}})
			runHub(t, h, nil)
			sub, other := newSub("u"), newSub("u")
			h.Register(sub)
			h.Register(other)
			first, err := h.Send(context.Background(), sub, "u", SendRequest{Content: "hi"})
			if err != nil {
				t.Fatal(err)
			}
			sub.textUntilDone(t, first.MessageID, 0)
			other.expect(t, protocol.TypeConversation) // created
			for i := range 5 {
				before, err := store.Conversation(context.Background(), "u", first.ConversationID)
				if err != nil {
					t.Fatal(err)
				}
				title := fmt.Sprint("Renamed ", i)
				var once sync.Once
				store.mu.Lock()
				store.beforeInsert = func(m *persistence.Message) {
					once.Do(func() { // after the regenerate read the conversation, before its insert
						if _, err := store.UpdateConversation(context.Background(), "u", m.ConversationID,
							persistence.ConversationPatch{Title: &title}); err != nil {
							t.Error(err)
						}
					})
				}
				store.mu.Unlock()
				res, err := h.Regenerate(context.Background(), sub, "u", RegenerateRequest{ConversationID: first.ConversationID})
				if err != nil {
					t.Fatal(err)
				}
				sub.expect(t, protocol.TypeAck)
				if m := sub.expect(t, protocol.TypeMessage).Message; m.ID != res.MessageID {
					t.Fatalf("regenerate %d: message frame names %s, want the answer %s", i, m.ID, res.MessageID)
				}
				mine := sub.expect(t, protocol.TypeConversation)
				sub.textUntilDone(t, res.MessageID, 0)
				told := other.expect(t, protocol.TypeConversation)
				stored, err := store.Conversation(context.Background(), "u", first.ConversationID)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range []frame{mine, told} {
					if f.Action != "updated" || f.Conversation.ID != first.ConversationID || f.Conversation.Title != title ||
						!f.Conversation.UpdatedAt.Equal(stored.UpdatedAt) || !stored.UpdatedAt.After(before.UpdatedAt) {
						t.Fatalf("regenerate %d: conversation frame %s %s %q at %v, want updated %s %q at %v (after %v), as stored",
							i, f.Action, f.Conversation.ID, f.Conversation.Title, f.Conversation.UpdatedAt,
							first.ConversationID, title, stored.UpdatedAt, before.UpdatedAt)
					}
				}
				other.quiet(t)
			}
		})
	}
}
