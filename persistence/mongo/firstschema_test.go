package mongo_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// TestFirstSchemaDocuments: documents in the shape the first release
// wrote (schema 1, before split_words, error_code, reasoning,
// omitted_messages, params and client_key) are read, searched, exported,
// updated and deleted like new ones, on a database opened at schema 1.
// Search missed the words their chunk boundaries cut (no split words)
// until Open's clean-up filled them in.
func TestFirstSchemaDocuments(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	u := mustUser(ctx, t, e.store, "old@example.com")
	old := insertFirstSchema(ctx, t, e, u.ID)
	_, err := e.raw.Collection("meta").UpdateOne(ctx, bson.D{{Key: "_id", Value: "schema"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	// That build recorded none of the clean-ups that came after it.
	if _, err := e.raw.Collection("meta").DeleteOne(ctx, bson.D{{Key: "_id", Value: "split_words_filled"}}); err != nil {
		t.Fatal(err)
	}
	s, err := mongo.Open(ctx, mongo.Options{URI: e.uri, Logger: testLogger(t), DeletionSweep: -1})
	if err != nil {
		t.Fatalf("open a database at schema 1: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	mongo.WaitCleanUp(s)

	t.Run("read", func(t *testing.T) {
		c, err := s.Conversation(ctx, u.ID, old.conv)
		if err != nil {
			t.Fatal(err)
		}
		if c.Title != "Old times" || c.ClientID != "" || c.Params != nil {
			t.Errorf("conversation %+v, want its title, no client id, no params", c)
		}
		page, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{})
		if err != nil || len(page.Conversations) != 2 || page.Conversations[0].ID != old.conv {
			t.Fatalf("list: %+v, %v", page, err)
		}
		ms, err := s.Messages(ctx, u.ID, old.conv)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 2 {
			t.Fatalf("%d messages, want 2", len(ms))
		}
		a := ms[1]
		if a.Content != "The photosynthesis of plants" || a.Reasoning != "" || a.OmittedMessages != 0 ||
			a.ErrorCode != "" || a.ParentID != ms[0].ID || a.Usage == nil || a.Usage.TotalTokens != 7 {
			t.Errorf("answer %+v", a)
		}
		byClient, err := s.MessageByClientID(ctx, u.ID, "client-1")
		if err != nil || byClient.ID != ms[0].ID {
			t.Errorf("message by client id: %+v, %v", byClient, err)
		}
		conv, withMs, err := s.ConversationWithMessages(ctx, u.ID, old.conv)
		if err != nil || conv.ID != old.conv || len(withMs) != 2 || withMs[1].Content != a.Content {
			t.Errorf("export: %+v, %d messages, %v", conv, len(withMs), err)
		}
		pg, err := s.MessagePage(ctx, u.ID, old.conv, persistence.PageQuery{Limit: 1})
		if err != nil || len(pg.Messages) != 1 || pg.Messages[0].Content != a.Content || !pg.HasMore {
			t.Errorf("message page: %+v, %v", pg, err)
		}
		var pieces []string
		if err := s.ReadContent(ctx, u.ID, a.ID, func(p string) error { pieces = append(pieces, p); return nil }); err != nil ||
			strings.Join(pieces, "") != a.Content {
			t.Errorf("read content: %q, %v", pieces, err)
		}
		pieces = nil
		if err := s.ReadReasoning(ctx, u.ID, a.ID, func(p string) error { pieces = append(pieces, p); return nil }); err != nil ||
			strings.Join(pieces, "") != "" {
			t.Errorf("read reasoning: %q, %v", pieces, err)
		}
		outline, err := s.MessageOutline(ctx, u.ID, old.conv)
		if err != nil || len(outline) != 2 {
			t.Errorf("outline: %+v, %v", outline, err)
		}
	})

	t.Run("search", func(t *testing.T) {
		var raw struct {
			SplitWords []string `bson:"split_words"`
		}
		if err := e.raw.Collection("messages").FindOne(ctx, bson.D{{Key: "_id", Value: mustOID(t, old.answer)}}).Decode(&raw); err != nil {
			t.Fatal(err)
		}
		if want := []string{"photosynthesis", "plants"}; !slices.Equal(raw.SplitWords, want) {
			t.Errorf("split words filled %q, want %q", raw.SplitWords, want)
		}
		for _, term := range []string{"photosynthesis", "PLANTS", "old times", "hello there"} {
			page, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{Search: term})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Conversations) != 1 {
				t.Errorf("search %q found %d conversations, want the old one", term, len(page.Conversations))
			}
		}
	})

	t.Run("update", func(t *testing.T) {
		_, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{
			{ID: old.streaming, Append: "more text", AppendReasoning: "because"},
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{
			{ID: old.streaming, Append: " and the end", Status: persistence.StatusError, Error: "boom", ErrorCode: "upstream"},
		})
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.Message(ctx, u.ID, old.streaming)
		if err != nil {
			t.Fatal(err)
		}
		if m.Content != "Half an answer, more text and the end" || m.Reasoning != "because" ||
			m.Status != persistence.StatusError || m.ErrorCode != "upstream" {
			t.Errorf("updated message %+v", m)
		}
		if err := s.SetOmittedMessages(ctx, u.ID, old.streaming, 3); err != nil {
			t.Fatal(err)
		}
		title, params := "Renamed", persistence.Params{}
		temp := 0.5
		params.Temperature = &temp
		c, err := s.UpdateConversation(ctx, u.ID, old.other, persistence.ConversationPatch{Title: &title, Params: &params})
		if err != nil || c.Title != title || c.Params == nil || c.Params.Temperature == nil {
			t.Errorf("update conversation: %+v, %v", c, err)
		}
		page, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{Search: "more text"})
		if err != nil || !slices.ContainsFunc(page.Conversations, func(c persistence.Conversation) bool { return c.ID == old.other }) {
			t.Errorf("search for the text appended: %+v, %v", page, err)
		}
	})

	t.Run("interrupt and delete", func(t *testing.T) {
		if _, err := s.InterruptStreaming(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteConversation(ctx, u.ID, old.other); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Conversation(ctx, u.ID, old.other); err == nil {
			t.Error("the deleted conversation is still read")
		}
	})
}

// firstSchemaIDs names the documents insertFirstSchema wrote.
type firstSchemaIDs struct {
	conv      string // with a question and its finished answer
	answer    string
	other     string // with an answer still streaming
	streaming string
}

// insertFirstSchema writes, with the raw client, two conversations of
// owner and their messages in the shape the first release wrote them
// (persistence/mongo/docs.go at 0088adb): no params or client_key on a
// conversation; no split_words (words cut by a chunk boundary included),
// reasoning, omitted_messages or error_code on a message.
func insertFirstSchema(ctx context.Context, t *testing.T, e env, ownerHex string) firstSchemaIDs {
	t.Helper()
	owner := mustOID(t, ownerHex)
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	conv := func(title string, at time.Time) bson.ObjectID {
		id := mustOID(t, persistence.NewID())
		_, err := e.raw.Collection("conversations").InsertOne(ctx, bson.D{
			{Key: "_id", Value: id}, {Key: "owner_id", Value: owner}, {Key: "title", Value: title},
			{Key: "model", Value: "old-model"}, {Key: "system_prompt", Value: ""},
			{Key: "created_at", Value: at}, {Key: "updated_at", Value: at},
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	msg := func(c bson.ObjectID, parent any, role, status, clientID string, usage any, at time.Time, chunks ...string) bson.ObjectID {
		id := mustOID(t, persistence.NewID())
		if clientID == "" { // that build filled it in
			clientID = persistence.NewID()
		}
		_, err := e.raw.Collection("messages").InsertOne(ctx, bson.D{
			{Key: "_id", Value: id}, {Key: "conversation_id", Value: c}, {Key: "owner_id", Value: owner},
			{Key: "parent_id", Value: parent}, {Key: "role", Value: role}, {Key: "content", Value: chunks},
			{Key: "model", Value: "old-model"}, {Key: "status", Value: status}, {Key: "finish_reason", Value: ""},
			{Key: "usage", Value: usage}, {Key: "error", Value: ""}, {Key: "client_message_id", Value: clientID},
			{Key: "created_at", Value: at}, {Key: "updated_at", Value: at},
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	c1 := conv("Old times", at)
	q := msg(c1, nil, "user", "complete", "client-1", nil, at, "hello there")
	a1 := msg(c1, q, "assistant", "complete", "", bson.D{{Key: "prompt_tokens", Value: 3},
		{Key: "completion_tokens", Value: 4}, {Key: "total_tokens", Value: 7}}, at.Add(time.Second),
		"The photo", "synthesis of pl", "ants")
	c2 := conv("Another", at.Add(-time.Minute))
	q2 := msg(c2, nil, "user", "complete", "client-2", nil, at, "go on")
	a2 := msg(c2, q2, "assistant", "streaming", "", nil, at.Add(time.Second), "Half an answer, ")
	return firstSchemaIDs{conv: c1.Hex(), answer: a1.Hex(), other: c2.Hex(), streaming: a2.Hex()}
}
