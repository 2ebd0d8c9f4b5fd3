package hub

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkCoalescingWait replays one answer of the benchmark's scenarios
// through the coalescer on a virtual clock, with the flusher ticking as
// Run does and the production defaults (25 ms interval, 200 streams
// widening): 500 tokens at 100 tokens/s among 250 answers (the burst of
// sends) and at 50 tokens/s among 200 (the cpu scenario). It reports what
// coalescing alone adds, whatever the machine's load: the delta frames per
// token and how long tokens waited (mean, p99, max), with no tab busy.
func BenchmarkCoalescingWait(b *testing.B) {
	for _, sc := range []struct {
		name string
		live int64
		gap  time.Duration
	}{{"burst_250x100tps", 250, 10 * time.Millisecond}, {"cpu_200x50tps", 200, 20 * time.Millisecond}} {
		b.Run(sc.name, func(b *testing.B) {
			var frames int
			var waits []time.Duration
			for b.Loop() {
				var err error
				frames, _, waits, err = replayAnswer(Options{CoalesceStreams: 200}, sc.live, sc.gap, 500)
				if err != nil {
					b.Fatal(err)
				}
			}
			slices.Sort(waits)
			var sum time.Duration
			for _, w := range waits {
				sum += w
			}
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(float64(frames)/float64(len(waits)), "frames/token")
			b.ReportMetric(ms(sum)/float64(len(waits)), "wait-mean-ms")
			b.ReportMetric(ms(waits[len(waits)*99/100]), "wait-p99-ms")
			b.ReportMetric(ms(waits[len(waits)-1]), "wait-max-ms")
		})
	}
}
