package storetest

import (
	"fmt"
	"reflect"
	"sort"
	"testing"

	"chatd/persistence"
)

// mkUser creates a user with a unique email derived from name.
func mkUser(t *testing.T, s persistence.Store, name string) persistence.User {
	t.Helper()
	u := persistence.User{
		Email:        fmt.Sprintf("%s.%s@example.test", name, persistence.NewID()),
		Name:         name,
		PasswordHash: "hash-of-" + name,
	}
	noErr(t, "CreateUser", s.CreateUser(testCtx(t), &u))
	return u
}

// mkConv creates a conversation of owner with the given title.
func mkConv(t *testing.T, s persistence.Store, owner, title string) persistence.Conversation {
	t.Helper()
	c := persistence.Conversation{OwnerID: owner, Title: title, Model: "test-model", SystemPrompt: "be brief"}
	noErr(t, "CreateConversation", s.CreateConversation(testCtx(t), &c))
	return c
}

// mkMsg inserts a complete message into c (owned by c.OwnerID).
func mkMsg(t *testing.T, s persistence.Store, c persistence.Conversation, parent string, role persistence.Role, content string) persistence.Message {
	t.Helper()
	m := persistence.Message{
		ConversationID: c.ID,
		OwnerID:        c.OwnerID,
		ParentID:       parent,
		Role:           role,
		Content:        content,
		Status:         persistence.StatusComplete,
	}
	noErr(t, "InsertMessage", s.InsertMessage(testCtx(t), &m))
	return m
}

// mkStreaming inserts an assistant message that is still streaming.
func mkStreaming(t *testing.T, s persistence.Store, c persistence.Conversation, parent, content string) persistence.Message {
	t.Helper()
	m := persistence.Message{
		ConversationID: c.ID,
		OwnerID:        c.OwnerID,
		ParentID:       parent,
		Role:           persistence.RoleAssistant,
		Content:        content,
		Model:          "test-model",
		Status:         persistence.StatusStreaming,
	}
	noErr(t, "InsertMessage", s.InsertMessage(testCtx(t), &m))
	return m
}

// getMsg loads one message and fails the test on error.
func getMsg(t *testing.T, s persistence.Store, owner, id string) persistence.Message {
	t.Helper()
	m, err := s.Message(testCtx(t), owner, id)
	noErr(t, "Message", err)
	return m
}

// getConv loads one conversation and fails the test on error.
func getConv(t *testing.T, s persistence.Store, owner, id string) persistence.Conversation {
	t.Helper()
	c, err := s.Conversation(testCtx(t), owner, id)
	noErr(t, "Conversation", err)
	return c
}

// sameUser fails unless got and want hold the same data.
func sameUser(t *testing.T, got, want persistence.User) {
	t.Helper()
	if got.ID != want.ID || got.Email != want.Email || got.Name != want.Name ||
		got.PasswordHash != want.PasswordHash || got.TokenVersion != want.TokenVersion {
		t.Fatalf("user = %+v, want %+v", got, want)
	}
	sameTime(t, "user CreatedAt", got.CreatedAt, want.CreatedAt)
	sameTime(t, "user UpdatedAt", got.UpdatedAt, want.UpdatedAt)
}

// sameConv fails unless got and want hold the same data.
func sameConv(t *testing.T, got, want persistence.Conversation) {
	t.Helper()
	if got.ID != want.ID || got.OwnerID != want.OwnerID || got.Title != want.Title ||
		got.Model != want.Model || got.SystemPrompt != want.SystemPrompt || got.ClientID != want.ClientID {
		t.Fatalf("conversation = %+v, want %+v", got, want)
	}
	sameTime(t, "conversation CreatedAt", got.CreatedAt, want.CreatedAt)
	sameTime(t, "conversation UpdatedAt", got.UpdatedAt, want.UpdatedAt)
}

// sameMsg fails unless got and want hold the same data.
func sameMsg(t *testing.T, got, want persistence.Message) {
	t.Helper()
	g := got
	g.CreatedAt, g.UpdatedAt = want.CreatedAt, want.UpdatedAt // compared with Equal below
	if !reflect.DeepEqual(g, want) {
		t.Fatalf("message =\n  %+v (usage %v)\nwant\n  %+v (usage %v)", got, got.Usage, want, want.Usage)
	}
	sameTime(t, "message CreatedAt", got.CreatedAt, want.CreatedAt)
	sameTime(t, "message UpdatedAt", got.UpdatedAt, want.UpdatedAt)
}

// convIDs returns the ids of cs in order.
func convIDs(cs []persistence.Conversation) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}

// msgIDs returns the ids of ms in order.
func msgIDs(ms []persistence.Message) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

// sameIDs fails unless got and want are equal, in order.
func sameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// sameIDSet fails unless got and want hold the same ids, ignoring order.
func sameIDSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	g := append([]string(nil), got...)
	w := append([]string(nil), want...)
	sort.Strings(g)
	sort.Strings(w)
	sameIDs(t, what, g, w)
}

// reversed returns a reversed copy of ids.
func reversed(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[len(ids)-1-i] = id
	}
	return out
}

// checkListOrder fails unless cs is sorted newest first by UpdatedAt, ties by id descending.
func checkListOrder(t *testing.T, cs []persistence.Conversation) {
	t.Helper()
	for i := 1; i < len(cs); i++ {
		a, b := cs[i-1], cs[i]
		if a.UpdatedAt.Before(b.UpdatedAt) || a.UpdatedAt.Equal(b.UpdatedAt) && a.ID <= b.ID {
			t.Fatalf("list order broken at %d: %s (%v) before %s (%v)", i, a.ID, a.UpdatedAt, b.ID, b.UpdatedAt)
		}
	}
}

// checkMsgOrder fails unless ms is sorted oldest first by CreatedAt, ties by id ascending.
func checkMsgOrder(t *testing.T, ms []persistence.Message) {
	t.Helper()
	for i := 1; i < len(ms); i++ {
		a, b := ms[i-1], ms[i]
		if a.CreatedAt.After(b.CreatedAt) || a.CreatedAt.Equal(b.CreatedAt) && a.ID >= b.ID {
			t.Fatalf("message order broken at %d: %s (%v) before %s (%v)", i, a.ID, a.CreatedAt, b.ID, b.CreatedAt)
		}
	}
}

// listAll walks every page of owner's conversations matching search with the
// given limit, checking page invariants, and returns them in order.
func listAll(t *testing.T, s persistence.Store, owner, search string, limit int) []persistence.Conversation {
	t.Helper()
	var all []persistence.Conversation
	cursor := ""
	for page := 0; ; page++ {
		if page > 10000 {
			t.Fatalf("pagination does not end")
		}
		p, err := s.ListConversations(testCtx(t), owner, persistence.ListQuery{Cursor: cursor, Limit: limit, Search: search})
		noErr(t, fmt.Sprintf("ListConversations page %d (limit %d, q %q)", page, limit, search), err)
		if len(p.Conversations) > limit {
			t.Fatalf("page %d has %d conversations, limit %d", page, len(p.Conversations), limit)
		}
		if p.NextCursor != "" && len(p.Conversations) != limit {
			t.Fatalf("page %d has %d conversations (limit %d) but a next cursor", page, len(p.Conversations), limit)
		}
		if len(p.Conversations) == 0 && page > 0 {
			t.Fatalf("page %d is empty: the previous page should have had no cursor", page)
		}
		all = append(all, p.Conversations...)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	checkListOrder(t, all)
	return all
}

// strPtr returns a pointer to s.
func strPtr(s string) *string { return &s }
