package batch

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
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

// BenchmarkAppend250 is BenchmarkAppend with 250 answers appending at once
// (a burst of sends), each on its own goroutine, and reports the slowest
// Append seen per 1,000 (p99.9-µs): the wait a token's delta can take.
func BenchmarkAppend250(b *testing.B) {
	store := newMemStore(b)
	w := New(store, Options{Interval: 10 * time.Millisecond})
	b.ReportAllocs()
	b.SetParallelism(250 / max(runtime.GOMAXPROCS(0), 1))
	var mu sync.Mutex
	var slow []time.Duration
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("m%p", pb)
		var lat []time.Duration
		for pb.Next() {
			t := time.Now()
			w.Append(id, "token ")
			lat = append(lat, time.Since(t))
		}
		mu.Lock()
		slow = append(slow, lat...)
		mu.Unlock()
	})
	b.StopTimer()
	if err := w.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	slices.Sort(slow)
	b.ReportMetric(float64(slow[len(slow)*999/1000].Nanoseconds())/1e3, "p99.9-µs")
}
