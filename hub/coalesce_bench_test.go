package hub

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"chatd/persistence"
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
				frames, waits = replayAnswer(sc.live, sc.gap, 500)
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

// replayAnswer streams tokens pieces gap apart into a generation among
// live answers and returns the deltas sent and each token's wait.
func replayAnswer(live int64, gap time.Duration, tokens int) (int, []time.Duration) {
	h := New(Options{Writer: nopWriter{}, CoalesceStreams: 200})
	h.live.Store(live)
	t0 := h.flush.base
	now := t0
	rec := &clockRecorder{now: &now}
	c := &conv{id: "c1", subs: map[Subscriber]struct{}{rec: {}}}
	g := &generation{hub: h, conv: c, msg: persistence.Message{ID: "m1", ConversationID: c.id}, lastFlush: t0}
	c.gen = g
	tick := t0
	ticksUntil := func(t time.Time) {
		for ; tick.Before(t); tick = tick.Add(h.flush.step) {
			now = tick
			h.flush.tick(now)
		}
	}
	arrived := make([]time.Time, 0, tokens)
	for i := range tokens {
		at := t0.Add(time.Duration(i) * gap)
		ticksUntil(at)
		now = at
		arrived = append(arrived, at)
		g.onDeltaAt(fmt.Sprintf("%04d", i), at)
	}
	ticksUntil(now.Add(time.Second))
	waits := make([]time.Duration, 0, tokens)
	for i, f := range rec.frames {
		d, err := deltaText(f)
		if err != nil {
			panic(err)
		}
		for range len(d) / 4 {
			waits = append(waits, rec.at[i].Sub(arrived[len(waits)]))
		}
	}
	return len(rec.frames), waits
}
