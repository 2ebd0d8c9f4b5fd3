package mongo_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
)

func TestUsers(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	s := e.store

	u := mustUser(ctx, t, s, "Ada@Example.com")
	if !persistence.ValidID(u.ID) || u.Email != "ada@example.com" || u.CreatedAt.IsZero() || !u.UpdatedAt.Equal(u.CreatedAt) {
		t.Fatalf("created user %+v: want a valid id, lower-cased email and timestamps", u)
	}
	dup := persistence.User{Email: "ADA@example.com", Name: "again"}
	if err := s.CreateUser(ctx, &dup); !errors.Is(err, persistence.ErrDuplicate) {
		t.Fatalf("second user with the same email: %v, want ErrDuplicate", err)
	} else if strings.Contains(strings.ToLower(err.Error()), "ada@") {
		t.Errorf("the duplicate error %q quotes the email", err)
	}
	byEmail, err := s.UserByEmail(ctx, "ada@example.com")
	if err != nil || byEmail != u {
		t.Fatalf("UserByEmail = %+v, %v; want %+v", byEmail, err, u)
	}
	byID, err := s.UserByID(ctx, u.ID)
	if err != nil || byID != u {
		t.Fatalf("UserByID = %+v, %v; want %+v", byID, err, u)
	}
	for _, id := range []string{persistence.NewID(), "nope", strings.ToUpper(u.ID)} {
		if _, err := s.UserByID(ctx, id); !errors.Is(err, persistence.ErrNotFound) {
			t.Errorf("UserByID(%q) = %v, want ErrNotFound", id, err)
		}
	}
	for want := int64(1); want <= 3; want++ {
		v, err := s.BumpTokenVersion(ctx, u.ID)
		if err != nil || v != want {
			t.Fatalf("BumpTokenVersion = %d, %v; want %d", v, err, want)
		}
	}
	if _, err := s.BumpTokenVersion(ctx, persistence.NewID()); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("BumpTokenVersion of an unknown user: %v, want ErrNotFound", err)
	}
}

func TestConversationsAreOwnerScoped(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	s := e.store
	alice, bob := mustUser(ctx, t, s, "a@x"), mustUser(ctx, t, s, "b@x")
	c := mustConversation(ctx, t, s, alice.ID, "plans")

	got, err := s.Conversation(ctx, alice.ID, c.ID)
	if err != nil || got != c {
		t.Fatalf("Conversation = %+v, %v; want %+v", got, err, c)
	}
	title := "renamed"
	steps := []struct {
		name string
		err  error
	}{
		{"get", func() error { _, err := s.Conversation(ctx, bob.ID, c.ID); return err }()},
		{"update", func() error {
			_, err := s.UpdateConversation(ctx, bob.ID, c.ID, persistence.ConversationPatch{Title: &title})
			return err
		}()},
		{"delete", s.DeleteConversation(ctx, bob.ID, c.ID)},
		{"insert message", s.InsertMessage(ctx, &persistence.Message{ConversationID: c.ID, OwnerID: bob.ID, Role: persistence.RoleUser, Content: "hi"})},
	}
	for _, st := range steps {
		if !errors.Is(st.err, persistence.ErrNotFound) {
			t.Errorf("%s as another owner: %v, want ErrNotFound", st.name, st.err)
		}
	}
	if page, err := s.ListConversations(ctx, bob.ID, persistence.ListQuery{}); err != nil || len(page.Conversations) != 0 {
		t.Errorf("bob lists %+v, %v; want nothing", page, err)
	}
	// The refused insert left nothing behind.
	if n, err := e.raw.Collection("messages").CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Errorf("%d messages stored after a refused insert (err %v)", n, err)
	}
	if got, _ := s.Conversation(ctx, alice.ID, c.ID); got != c {
		t.Errorf("after bob's attempts: %+v, want %+v", got, c)
	}
}

func TestUpdateConversation(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	s := e.store
	u := mustUser(ctx, t, s, "a@x")
	c := mustConversation(ctx, t, s, u.ID, "old")
	title, prompt := "new", "be brief"
	got, err := s.UpdateConversation(ctx, u.ID, c.ID, persistence.ConversationPatch{Title: &title, SystemPrompt: &prompt})
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != title || got.SystemPrompt != prompt || got.Model != c.Model || got.UpdatedAt.Before(c.UpdatedAt) || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Errorf("updated %+v from %+v", got, c)
	}
	if again, _ := s.Conversation(ctx, u.ID, c.ID); again != got {
		t.Errorf("read back %+v, want %+v", again, got)
	}
}

func TestMessagesLifecycle(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	s := e.store
	u := mustUser(ctx, t, s, "a@x")
	c := mustConversation(ctx, t, s, u.ID, "chat")

	q := mustMessage(ctx, t, s, c, persistence.RoleUser, "What is Go?")
	if !persistence.ValidID(q.ID) || q.ClientMessageID == "" || q.CreatedAt.IsZero() {
		t.Fatalf("inserted %+v: want id, client id and timestamps filled", q)
	}
	a := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, ParentID: q.ID, Role: persistence.RoleAssistant,
		Model: "m", Status: persistence.StatusStreaming, ClientMessageID: "client-1", CreatedAt: q.CreatedAt.Add(time.Millisecond)}
	if err := s.InsertMessage(ctx, &a); err != nil {
		t.Fatal(err)
	}
	conv, _ := s.Conversation(ctx, u.ID, c.ID)
	if !conv.UpdatedAt.Equal(a.CreatedAt) {
		t.Errorf("conversation updatedAt %v, want the last message's %v", conv.UpdatedAt, a.CreatedAt)
	}

	dup := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleUser, Content: "again", ClientMessageID: "client-1"}
	if err := s.InsertMessage(ctx, &dup); !errors.Is(err, persistence.ErrDuplicate) {
		t.Fatalf("reused client message id: %v, want ErrDuplicate", err)
	}

	at := a.CreatedAt.Add(time.Second)
	batches := [][]persistence.MessageUpdate{
		{{ID: a.ID, Append: "Go is ", At: at}},
		{{ID: a.ID, Append: "a programming "}, {ID: persistence.NewID(), Append: "lost"}, {ID: "bad", Append: "lost"}},
		{{ID: a.ID, Append: "language."}, {ID: a.ID, Status: persistence.StatusComplete, FinishReason: "stop",
			Usage: &persistence.Usage{PromptTokens: 3, CompletionTokens: 5, TotalTokens: 8}, At: at.Add(time.Second)}},
	}
	for _, b := range batches {
		if _, err := s.ApplyMessageUpdates(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Message(ctx, u.ID, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := a
	want.Content, want.Status, want.FinishReason = "Go is a programming language.", persistence.StatusComplete, "stop"
	want.Usage, want.UpdatedAt = &persistence.Usage{PromptTokens: 3, CompletionTokens: 5, TotalTokens: 8}, at.Add(time.Second).UTC()
	gotUsage, wantUsage := got.Usage, want.Usage
	got.Usage, want.Usage = nil, nil
	if got != want || gotUsage == nil || *gotUsage != *wantUsage {
		t.Errorf("after updates:\n got %+v\nwant %+v", got, want)
	}
	byClient, err := s.MessageByClientID(ctx, u.ID, "client-1")
	if err != nil || byClient.ID != a.ID {
		t.Errorf("MessageByClientID = %+v, %v", byClient, err)
	}
	if _, err := s.Message(ctx, persistence.NewID(), a.ID); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("Message of another owner: %v, want ErrNotFound", err)
	}

	all, err := s.Messages(ctx, u.ID, c.ID)
	if err != nil || len(all) != 2 || all[0].ID != q.ID || all[1].ID != a.ID {
		t.Fatalf("Messages = %+v, %v; want question then answer", all, err)
	}
	if other, err := s.Messages(ctx, persistence.NewID(), c.ID); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("Messages of another owner = %+v, %v; want ErrNotFound", other, err)
	}
}

// TestMessageDocumentsSetEveryIndexedField reads raw documents: MongoDB
// rejects a second document missing a field of a unique index.
func TestMessageDocumentsSetEveryIndexedField(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	s := e.store
	u := mustUser(ctx, t, s, "a@x")
	c := mustConversation(ctx, t, s, u.ID, "chat")
	m := mustMessage(ctx, t, s, c, persistence.RoleAssistant, "")
	var raw bson.M
	if err := e.raw.Collection("messages").FindOne(ctx, bson.D{}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"_id", "conversation_id", "owner_id", "parent_id", "role", "content", "status", "client_message_id", "created_at", "updated_at"} {
		if _, ok := raw[f]; !ok {
			t.Errorf("field %s missing from %v", f, raw)
		}
	}
	if raw["client_message_id"] != m.ClientMessageID || raw["_id"] != mustOID(t, m.ID) {
		t.Errorf("raw %v does not match %+v", raw, m)
	}
	if arr, ok := raw["content"].(bson.A); !ok || len(arr) != 0 {
		t.Errorf("content of an empty message = %#v, want an empty array", raw["content"])
	}
}

func mustOID(t *testing.T, id string) bson.ObjectID {
	t.Helper()
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		t.Fatal(err)
	}
	return oid
}

func TestInterruptStreaming(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	s := e.store
	u := mustUser(ctx, t, s, "a@x")
	c := mustConversation(ctx, t, s, u.ID, "chat")
	done := mustMessage(ctx, t, s, c, persistence.RoleUser, "q")
	left := []persistence.Message{
		mustMessage(ctx, t, s, c, persistence.RoleAssistant, "partial"),
		mustMessage(ctx, t, s, c, persistence.RoleAssistant, ""),
	}
	n, err := s.InterruptStreaming(ctx)
	if err != nil || n != len(left) {
		t.Fatalf("InterruptStreaming = %d, %v; want %d", n, err, len(left))
	}
	for _, m := range left {
		got, _ := s.Message(ctx, u.ID, m.ID)
		if got.Status != persistence.StatusInterrupted || got.Content != m.Content {
			t.Errorf("after interrupt: %+v", got)
		}
	}
	if got, _ := s.Message(ctx, u.ID, done.ID); got.Status != persistence.StatusComplete {
		t.Errorf("a complete message changed: %+v", got)
	}
	if n, err := s.InterruptStreaming(ctx); err != nil || n != 0 {
		t.Errorf("second InterruptStreaming = %d, %v; want 0", n, err)
	}
}

func TestDeleteConversationRemovesItsMessagesOnly(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	s := e.store
	u := mustUser(ctx, t, s, "a@x")
	gone, kept := mustConversation(ctx, t, s, u.ID, "gone"), mustConversation(ctx, t, s, u.ID, "kept")
	for range 3 {
		mustMessage(ctx, t, s, gone, persistence.RoleUser, "x")
	}
	k := mustMessage(ctx, t, s, kept, persistence.RoleUser, "y")
	if err := s.DeleteConversation(ctx, u.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Conversation(ctx, u.ID, gone.ID); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("deleted conversation: %v", err)
	}
	if n, _ := e.raw.Collection("messages").CountDocuments(ctx, bson.D{}); n != 1 {
		t.Errorf("%d messages left, want 1", n)
	}
	if _, err := s.Message(ctx, u.ID, k.ID); err != nil {
		t.Errorf("message of the other conversation: %v", err)
	}
	if err := s.DeleteConversation(ctx, u.ID, gone.ID); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
}
