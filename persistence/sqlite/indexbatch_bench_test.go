package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/persistence/storetest"
)

// BenchmarkIndexBatch reports the search indexer's cost per message:
// batches of indexBatch messages of about 300 bytes, queued while the
// indexer waits (IndexQuiet and IndexMaxLag an hour) and then indexed by
// indexOnce, after warm messages already in the index. The messages come
// from one user, or from 64 users in no order, as a busy server's do:
// their search keys (the index's rowids) then go up and down within a
// batch.
// It also reports the index's segments at the end.
//
//	go test -run '^$' -bench IndexBatch -benchtime 20x ./persistence/sqlite/
func BenchmarkIndexBatch(b *testing.B) {
	for _, owners := range []int{1, 64} {
		b.Run(fmt.Sprintf("owners=%d", owners), func(b *testing.B) {
			ctx := context.Background()
			s := openTest(b, Options{IndexQuiet: time.Hour, IndexMaxLag: time.Hour})
			fixtures := make([]searchFixture, owners)
			for i := range fixtures {
				fixtures[i] = newSearchFixtureFor(b, s, fmt.Sprintf("owner%d@example.test", i))
			}
			r := rand.New(rand.NewPCG(1, 2))
			queue := func(n int) {
				msgs := make([]persistence.Message, 0, n)
				for range n {
					f := fixtures[r.IntN(owners)]
					msgs = append(msgs, persistence.Message{ConversationID: f.conv.ID, OwnerID: f.user.ID,
						Role: persistence.RoleUser, Content: storetest.BenchText(r, 300), Status: persistence.StatusComplete})
				}
				for i := range msgs {
					if err := s.InsertMessage(ctx, &msgs[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
			drain := func() {
				for {
					n, err := s.indexOnce(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if n == 0 {
						return
					}
				}
			}
			queue(20 * indexBatch) // warm: an index of some size
			drain()
			for b.Loop() {
				b.StopTimer()
				queue(indexBatch)
				b.StartTimer()
				drain()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*indexBatch), "µs/msg")
			var segs int
			if err := s.sx.QueryRowContext(ctx, `SELECT count(DISTINCT segid) FROM message_fts_idx`).Scan(&segs); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(segs), "segments")
		})
	}
}
