package sqlite

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
			f := newSearchFixtureFor(b, openTest(b, Options{IndexQuiet: -1}), "bytes@example.test")
			s := f.s
			var wal int64
			for b.Loop() {
				b.StopTimer()
				if _, err := s.sx.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				f.insert(b, tc.text, persistence.StatusComplete)
				waitIndexed(b, s)
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
