//go:build unix

package openai_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatd/llm/fakeai"
)

// BenchmarkConcurrentStreams runs 100 and 800 concurrent streams of 50
// tokens at 50 tokens/s through the client against the fake server in this
// process. It reports the CPU time per stream (client and server together)
// and the delivery lag of tokens, from the fake's stamp to onDelta.
func BenchmarkConcurrentStreams(b *testing.B) {
	for _, n := range []int{100, 800} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchStreams(b, n) })
	}
}

func benchStreams(b *testing.B, streams int) {
	srv := fakeai.Start(b, fakeai.Options{Defaults: fakeai.Config{Tokens: 50, Delay: 20 * time.Millisecond, Stamp: fakeai.StampAll}})
	c := newClient(srv.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var lags []time.Duration
	cpu0 := cpuTime()
	for b.Loop() {
		var wg sync.WaitGroup
		for range streams {
			wg.Go(func() {
				var mine []time.Duration
				_, err := c.Stream(ctx, request("go"), func(s string) {
					now := fakeai.MonotonicNanos()
					for _, ts := range fakeai.ParseStamps(s) {
						mine = append(mine, time.Duration(now-ts))
					}
				})
				if err != nil {
					b.Error(err)
				}
				mu.Lock()
				lags = append(lags, mine...)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N*streams), "cpu-ms/stream")
	slices.Sort(lags)
	if len(lags) > 0 {
		b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "lag-p50-ms")
		b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "lag-p99-ms")
	}
}

// cpuTime returns the user and system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
