package sqlite

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chatd/persistence"
	"chatd/persistence/storetest"
)

// BenchmarkSearchPhrases times a user's search through the index once it
// holds every message, on two corpora of 1 KB messages in conversations
// of 25: "repo", this repository's own Markdown and Go files cut into
// pieces (prose and code, about 3,000 messages), and "words", the store
// benchmarks' text (storetest.BenchText: 40 words in random order, where
// every message holds every common word, the hardest case for an index
// of trigrams without positions). The queries: common phrases, a rare
// word and a word found nowhere.
//
//	go test -run '^$' -bench SearchPhrases -benchtime 100x ./persistence/sqlite/
func BenchmarkSearchPhrases(b *testing.B) {
	var repo strings.Builder
	err := filepath.WalkDir(filepath.Join("..", ".."), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".") && d.Name() != "." && d.Name() != "..") {
			return filepath.SkipDir
		}
		if ext := filepath.Ext(p); !d.IsDir() && (ext == ".md" || ext == ".go") {
			raw, err := os.ReadFile(p)
			repo.Write(raw)
			return err
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	corpora := []struct {
		name    string
		text    func(i int) string
		n       int
		queries []string
	}{
		{"repo", func(i int) string { return repo.String()[i*1024 : (i+1)*1024] }, min(repo.Len()/1024, 5000),
			[]string{"the hub", "return nil", "the store", "err != nil", "coalescing window", "zanzibar", "nosuchwordanywhere"}},
		{"words", func(int) string { return storetest.BenchText(r, 1024) }, 5000,
			[]string{"the quick", "socket message", storetest.RareWord, "nosuchwordanywhere"}},
	}
	for _, c := range corpora {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			f := newSearchFixtureFor(b, openTest(b, Options{IndexQuiet: -1}), "phrases@example.test")
			for i := range c.n {
				if i > 0 && i%25 == 0 { // conversations of 25 messages
					f.conv = persistence.Conversation{OwnerID: f.user.ID, Model: "m"}
					if err := f.s.CreateConversation(ctx, &f.conv); err != nil {
						b.Fatal(err)
					}
				}
				f.insert(b, c.text(i), persistence.StatusComplete)
			}
			waitIndexed(b, f.s)
			for _, q := range c.queries {
				b.Run(q, func(b *testing.B) {
					for b.Loop() {
						if _, err := f.s.ListConversations(ctx, f.user.ID, persistence.ListQuery{Search: q, Limit: 30}); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
