package mongo_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// TestSearchAcrossChunks streams answers in chunks cut at awkward places
// and checks which terms search finds.
func TestSearchAcrossChunks(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	s := e.store
	u := mustUser(ctx, t, s, "a@x")
	stream := func(s *mongo.Store, title string, chunks ...string) persistence.Conversation {
		c := mustConversation(ctx, t, s, u.ID, title)
		a := mustMessage(ctx, t, s, c, persistence.RoleAssistant, "")
		for _, ch := range chunks {
			if _, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: a.ID, Append: ch}}); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	words := stream(s, "words", "The photo", "synth", "esis of ", "chloro", "plasts is extra", "ordin", "ary; ")
	cjk := stream(s, "cjk", "数据", "库存储", "聊天记录 done")
	longRun := strings.Repeat("a", 40) + strings.Repeat("b", 40)
	long := stream(s, "long", longRun[:40], longRun[40:])
	phrase := stream(s, "phrase", "one two ", "three four ", "five")

	tests := []struct {
		term string
		want []persistence.Conversation
	}{
		{"photosynthesis", []persistence.Conversation{words}},
		{"PLASTS IS EXTRAORDINARY", []persistence.Conversation{words}},
		{"extraordinary;", []persistence.Conversation{words}},
		{"数据库存储聊天记录", []persistence.Conversation{cjk}},
		{"two three four five", []persistence.Conversation{phrase}},
		{"four  five", nil}, // two spaces: not in the text
		{strings.Repeat("a", 16) + strings.Repeat("b", 16), []persistence.Conversation{long}},
		// More than maxSplitRunes characters on both sides of a cut: in no
		// chunk or split word, found by its pieces and the joined text.
		{strings.Repeat("a", 20) + strings.Repeat("b", 20), []persistence.Conversation{long}},
		{longRun, []persistence.Conversation{long}},
		{longRun + "b", nil},
		{"a" + longRun, nil},
	}
	for _, tt := range tests {
		page, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{Search: tt.term})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := titles(page.Conversations), titles(tt.want); got != want {
			t.Errorf("search %q: got %s, want %s", tt.term, got, want)
		}
	}
}

func titles(cs []persistence.Conversation) string {
	var t []string
	for _, c := range cs {
		t = append(t, c.Title)
	}
	return fmt.Sprint(t)
}

// TestSplitWordAfterReopen appends to a message another store instance
// created: the tail of its text is read from the database.
func TestSplitWordAfterReopen(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	u := mustUser(ctx, t, e.store, "a@x")
	c := mustConversation(ctx, t, e.store, u.ID, "reopened")
	a := mustMessage(ctx, t, e.store, c, persistence.RoleAssistant, "")
	if _, err := e.store.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: a.ID, Append: "half a pango"}}); err != nil {
		t.Fatal(err)
	}
	other, err := mongo.Open(ctx, mongo.Options{URI: e.uri, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Close(context.Background()) }()
	if _, err := other.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: a.ID, Append: "lin and more"}}); err != nil {
		t.Fatal(err)
	}
	page, err := other.ListConversations(ctx, u.ID, persistence.ListQuery{Search: "pangolin"})
	if err != nil || len(page.Conversations) != 1 {
		t.Errorf("search after reopen: %+v, %v", page.Conversations, err)
	}
}
