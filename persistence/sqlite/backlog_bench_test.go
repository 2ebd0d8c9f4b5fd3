package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"chatd/persistence"
	"chatd/persistence/storetest"
)

// BenchmarkSearchBehindIndex measures one user's search while the search
// index lags 2,000 messages (of 50 users) behind, as after a burst of
// writes: its writer is held, so every message stays queued, and a search
// checks the queued messages directly. One op is a search for a word that
// is nowhere (every candidate is checked).
//
//	go test -run '^$' -bench SearchBehindIndex -benchtime 500x ./persistence/sqlite/
func BenchmarkSearchBehindIndex(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "chatd.db")
	s, err := Open(ctx, Options{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(ctx)
	sx, err := sql.Open("sqlite", "file:"+searchPath(path)+"?_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer sx.Close()
	hold, err := sx.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = hold.Rollback() }()
	const users, queued = 50, 2000
	var convs []persistence.Conversation
	for i := range users {
		u := persistence.User{Email: fmt.Sprintf("u%d@example.test", i), Name: "U", PasswordHash: "x"}
		if err := s.CreateUser(ctx, &u); err != nil {
			b.Fatal(err)
		}
		c := persistence.Conversation{OwnerID: u.ID, Model: "m"}
		if err := s.CreateConversation(ctx, &c); err != nil {
			b.Fatal(err)
		}
		convs = append(convs, c)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range queued {
		c := convs[i%users]
		m := persistence.Message{ConversationID: c.ID, OwnerID: c.OwnerID, Role: persistence.RoleUser,
			Content: storetest.BenchText(r, 1024), Status: persistence.StatusComplete}
		if err := s.InsertMessage(ctx, &m); err != nil {
			b.Fatal(err)
		}
	}
	if n, err := s.SearchBacklog(ctx); err != nil || n != queued {
		b.Fatalf("backlog %d, %v; want %d", n, err, queued)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		page, err := s.ListConversations(ctx, convs[i%users].OwnerID, persistence.ListQuery{Search: "nosuchwordanywhere"})
		if err != nil || len(page.Conversations) != 0 {
			b.Fatalf("search: %+v, %v", page, err)
		}
	}
}
