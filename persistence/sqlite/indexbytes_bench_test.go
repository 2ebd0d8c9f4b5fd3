package sqlite

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/persistence/storetest"
)

// BenchmarkSearchIndexBytes reports what the search index writes for one
// finished message of about 64 KB: the search file's WAL bytes per byte of
// text (the file checkpointed to empty before each message), for three
// kinds of text: the store benchmarks' words (a small vocabulary), English
// prose (the repository's README), and random letters (the most distinct
// trigrams a text can have).
//
//	go test -run '^$' -bench SearchIndexBytes -benchtime 20x ./persistence/sqlite/
func BenchmarkSearchIndexBytes(b *testing.B) {
	const size = 64 << 10
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		b.Fatal(err)
	}
	prose := strings.Repeat(string(readme), size/len(readme)+1)[:size]
	r := rand.New(rand.NewPCG(1, 2))
	letters := make([]byte, size)
	for i := range letters {
		letters[i] = "abcdefghijklmnopqrstuvwxyz      "[r.IntN(32)]
	}
	for _, tc := range []struct {
		name, text string
	}{
		{"words", storetest.BenchText(r, size)},
		{"prose", prose},
		{"letters", string(letters)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, Options{Path: filepath.Join(b.TempDir(), "chatd.db"), IndexQuiet: -1,
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(ctx)
			u := persistence.User{Email: "bytes@example.test", Name: "B", PasswordHash: "x"}
			if err := s.CreateUser(ctx, &u); err != nil {
				b.Fatal(err)
			}
			c := persistence.Conversation{OwnerID: u.ID, Model: "m"}
			if err := s.CreateConversation(ctx, &c); err != nil {
				b.Fatal(err)
			}
			var wal int64
			for b.Loop() {
				b.StopTimer()
				if _, err := s.sx.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleAssistant,
					Content: tc.text, Status: persistence.StatusComplete}
				if err := s.InsertMessage(ctx, &m); err != nil {
					b.Fatal(err)
				}
				for {
					n, err := s.SearchBacklog(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if n == 0 {
						break
					}
					time.Sleep(100 * time.Microsecond) // polling the indexer's queue
				}
				b.StopTimer()
				st, err := os.Stat(s.searchPath + "-wal")
				if err != nil {
					b.Fatal(err)
				}
				wal += st.Size()
				b.StartTimer()
			}
			b.ReportMetric(float64(wal)/float64(b.N)/float64(len(tc.text)), "index-bytes/text-byte")
		})
	}
}
