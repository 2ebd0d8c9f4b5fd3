package batch

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkAppend measures the cost of one Append (one token) on the
// generation goroutine, with answers streaming in parallel, and reports bulk
// writes per token.
func BenchmarkAppend(b *testing.B) {
	store := newMemStore(b)
	w := New(store, Options{Interval: 10 * time.Millisecond})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("m%p", pb)
		for pb.Next() {
			w.Append(id, "token ")
		}
	})
	b.StopTimer()
	if err := w.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	calls, _ := store.counts()
	b.ReportMetric(float64(calls)/float64(b.N), "writes/token")
}
