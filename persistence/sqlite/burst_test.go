package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"chatd/persistence"
)

// BenchmarkBurstOfSends measures what 250 users sending at the same instant
// cost the store: each creates a conversation and inserts its message and
// the answer's row, all at once. One op is the whole burst.
func BenchmarkBurstOfSends(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: filepath.Join(b.TempDir(), "chatd.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(ctx)
	const users = 250
	owners := make([]string, users)
	for i := range owners {
		u := persistence.User{Email: fmt.Sprintf("u%d@example.test", i), Name: "U", PasswordHash: "x"}
		if err := s.CreateUser(ctx, &u); err != nil {
			b.Fatal(err)
		}
		owners[i] = u.ID
	}
	b.ReportAllocs()
	for b.Loop() {
		var wg sync.WaitGroup
		for _, owner := range owners {
			wg.Go(func() {
				c := persistence.Conversation{OwnerID: owner, Model: "m"}
				if err := s.CreateConversation(ctx, &c); err != nil {
					b.Error(err)
					return
				}
				user := persistence.Message{ConversationID: c.ID, OwnerID: owner, Role: persistence.RoleUser,
					Content: "a question of some length", Status: persistence.StatusComplete}
				if err := s.InsertMessage(ctx, &user); err != nil {
					b.Error(err)
					return
				}
				answer := persistence.Message{ConversationID: c.ID, OwnerID: owner, ParentID: user.ID,
					Role: persistence.RoleAssistant, Model: "m", Status: persistence.StatusStreaming}
				if err := s.InsertMessage(ctx, &answer); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
}
