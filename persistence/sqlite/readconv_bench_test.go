package sqlite

import (
	"strings"
	"testing"

	"chatd/persistence"
)

// BenchmarkReadConversation is the cost of one send's reads, one at a time
// (no waiting): Conversation then Messages, as the hub read them before,
// against ConversationWithMessages, for a conversation without messages
// (as the benchmark's burst sends into) and one with 20.
func BenchmarkReadConversation(b *testing.B) {
	s, ctx := benchStore(b, Options{})
	u := persistence.User{Email: "r@example.test", Name: "R", PasswordHash: "x"}
	if err := s.CreateUser(ctx, &u); err != nil {
		b.Fatal(err)
	}
	empty := persistence.Conversation{OwnerID: u.ID, Model: "m", Title: "t"}
	full := persistence.Conversation{OwnerID: u.ID, Model: "m", Title: "t"}
	for _, c := range []*persistence.Conversation{&empty, &full} {
		if err := s.CreateConversation(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	parent := ""
	for i := range 20 {
		role := persistence.RoleUser
		if i%2 == 1 {
			role = persistence.RoleAssistant
		}
		m := persistence.Message{ConversationID: full.ID, OwnerID: u.ID, ParentID: parent, Role: role,
			Content: "a message of a few words, as a chat has", Status: persistence.StatusComplete}
		if err := s.InsertMessage(ctx, &m); err != nil {
			b.Fatal(err)
		}
		parent = m.ID
	}
	for _, c := range []struct {
		name string
		id   string
	}{{"no messages", empty.ID}, {"20 messages", full.ID}} {
		b.Run(c.name+"/apart", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Conversation(ctx, u.ID, c.id); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Messages(ctx, u.ID, c.id); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/together", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.ConversationWithMessages(ctx, u.ID, c.id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecheckRead is the store's part of a session recheck, one at a
// time: the whole user row (UserByID, as before issue 12's third burst
// round) against the token version alone (TokenVersion).
func BenchmarkRecheckRead(b *testing.B) {
	s, ctx := benchStore(b, Options{})
	u := persistence.User{Email: "r@example.test", Name: "R", PasswordHash: "$2a$10$" + strings.Repeat("h", 53)}
	if err := s.CreateUser(ctx, &u); err != nil {
		b.Fatal(err)
	}
	b.Run("UserByID", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.UserByID(ctx, u.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("TokenVersion", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.TokenVersion(ctx, u.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
